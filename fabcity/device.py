"""Retained device messages: ``status`` (online/offline) and ``meta`` (what the device is)."""

import json
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fabcity.errors import BadReading
from fabcity.names import SensorName

__all__ = [
    "DeviceMeta",
    "Location",
    "SensorMeta",
    "Status",
    "decode_meta",
    "decode_status",
    "encode_meta",
    "encode_status",
]


class Location(BaseModel):
    """Where a device stands (WGS 84)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class SensorMeta(BaseModel):
    """One sensor of a device and the metrics (name -> unit) it reports."""

    model_config = ConfigDict(extra="allow")

    name: SensorName
    driver: str
    metrics: dict[str, str]


class DeviceMeta(BaseModel):
    """The retained ``meta`` payload."""

    model_config = ConfigDict(extra="allow")

    site: str
    device: str
    kind: Literal["environment", "machine", "mixed"] = "environment"
    name: str | None = None
    location: Location | None = None
    sensors: list[SensorMeta] = []
    firmware: str | None = None
    version: str | None = None


class Status(BaseModel):
    """The retained ``status`` payload; the broker's last will publishes ``offline``."""

    model_config = ConfigDict(extra="allow")

    state: Literal["online", "offline"]
    ts: str | None = None
    version: str | None = None
    uptime_s: float | None = None
    buffered: int | None = Field(None, description="readings waiting on the device")
    dropped: int | None = Field(None, description="readings the device discarded (full buffer)")


M = TypeVar("M", bound=BaseModel)


def _decode(model: type[M], payload: bytes) -> M:
    try:
        return model.model_validate(json.loads(payload))
    except (ValueError, RecursionError) as exc:  # ValidationError is a ValueError
        reason = "bad_schema" if isinstance(exc, ValidationError) else "bad_json"
        first = str(exc).splitlines()
        raise BadReading(reason, f"invalid {model.__name__}: {' '.join(first[:3])}") from None


def decode_status(payload: bytes) -> Status:
    """Decode a ``status`` payload or raise :class:`BadReading`."""
    return _decode(Status, payload)


def decode_meta(payload: bytes) -> DeviceMeta:
    """Decode a ``meta`` payload or raise :class:`BadReading`."""
    return _decode(DeviceMeta, payload)


def _encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def encode_status(status: Status) -> bytes:
    """The ``status`` payload, as both sides of the contract read it."""
    return _encode(status)


def encode_meta(meta: DeviceMeta) -> bytes:
    """The ``meta`` payload, as both sides of the contract read it."""
    return _encode(meta)
