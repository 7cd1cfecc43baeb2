"""Response models of the forwarders' part of ``GET /api/v1/health``."""

from pydantic import BaseModel, Field

from hub.api.schemas import HealthPublic

__all__ = ["ForwarderHealth", "HealthWithForwarders"]


class ForwarderHealth(BaseModel):
    """One ``[[forward]]`` entry: how far behind storage it is and whether it is retrying."""

    name: str = Field(examples=["sensor.community-raspi-000000001234"])
    to: str = Field(examples=["sensor.community"])
    lag_s: float = Field(description="newest stored reading minus the last one forwarded, "
                                     "over the forwarded series (0: caught up)")
    forwarded_until: str | None = Field(
        None, description="RFC 3339: every forwarded series is done up to here")
    status: str = Field(description='"ok" or "retrying: <why>"', examples=["ok"])


class HealthWithForwarders(HealthPublic):
    """The hub's health plus one entry per forwarder (empty without ``[[forward]]``)."""

    forwarders: list[ForwarderHealth] = []
