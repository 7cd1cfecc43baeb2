"""``[[forward]]`` in ``hub.toml``: which network gets which devices' readings.

``to`` names a forwarder in the ``fabcity.forwarders`` entry points; that forwarder's own
options model (its ``Options``) validates the other keys, so a typo is refused when the hub
starts, not when the first request goes out.
"""

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from hub.forward.base import ForwarderOptions

__all__ = ["ForwardConfig"]


class ForwardConfig(BaseModel):
    """One ``[[forward]]`` entry, checked against its forwarder's options."""

    model_config = ConfigDict(extra="allow")

    to: str = Field(pattern=r"^[a-z0-9._-]{1,64}$",
                    description='the network: "sensor.community" or "opensensemap"')

    @model_validator(mode="after")
    def _known_and_valid(self) -> "ForwardConfig":
        self.options()
        return self

    def options(self) -> "ForwarderOptions":
        """The validated options of the forwarder ``to`` names."""
        from hub.forward.base import forwarder_class

        cls = forwarder_class(self.to)  # ConfigError (a ValueError) lists the known names
        try:
            return cls.Options.model_validate(self.model_dump())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors())
            raise ValueError(f"to = {self.to!r}: {problems}") from None
