"""MQTT topics of wire contract v1: ``fabcity/v1/{site}/{device}/{kind}``."""

from dataclasses import dataclass
from enum import StrEnum

from fabcity.errors import BadReading
from fabcity.names import check_device, check_site

__all__ = ["PREFIX", "Kind", "Topic", "subscription"]

PREFIX = "fabcity/v1"


class Kind(StrEnum):
    """What a topic carries; see docs/protocol.md for direction and retention."""

    READINGS = "readings"
    STATUS = "status"
    META = "meta"
    CMD = "cmd"
    ACK = "ack"


@dataclass(frozen=True, slots=True)
class Topic:
    """A validated v1 topic; construction refuses bad names."""

    site: str
    device: str
    kind: Kind

    def __post_init__(self) -> None:
        check_site(self.site)
        check_device(self.device)
        if not isinstance(self.kind, Kind):
            object.__setattr__(self, "kind", _kind(self.kind))

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/{self.device}/{self.kind.value}"

    @classmethod
    def parse(cls, topic: str) -> "Topic":
        """Parse a topic string; raise :class:`BadReading` (``bad_topic``/``unknown_kind``)."""
        parts = topic.split("/")
        if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX:
            raise BadReading(
                "bad_topic", f"invalid topic {topic!r}: expected {PREFIX}/<site>/<device>/<kind>"
            )
        try:
            return cls(parts[2], parts[3], _kind(parts[4]))
        except BadReading as exc:
            if exc.reason == "bad_name":
                raise BadReading("bad_topic", f"invalid topic {topic!r}: {exc}") from None
            raise


def _kind(value: str) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in Kind)
        raise BadReading(
            "unknown_kind", f"unknown topic kind {value!r}: one of {allowed}"
        ) from None


def subscription(kind: Kind | str = "+", site: str = "+", device: str = "+") -> str:
    """A subscription filter, e.g. ``fabcity/v1/+/+/readings``."""
    kind_value = kind.value if isinstance(kind, Kind) else kind
    return f"{PREFIX}/{site}/{device}/{kind_value}"
