"""Retained device messages: ``status`` (online/offline) and ``meta`` (what the device is).

Both are bounded (bytes, sensors, metrics, text lengths): the hub keeps the last of each for
every device and serves it on every ``/devices`` call, so an unbounded one is a memory and
CPU sink. A ``meta`` describes the device of its topic and no other.
"""

import json
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fabcity.codec import load_json
from fabcity.errors import BadReading
from fabcity.names import SensorName
from fabcity.topic import Topic

__all__ = [
    "MAX_META_BYTES",
    "MAX_METRICS_PER_SENSOR",
    "MAX_SENSORS_PER_DEVICE",
    "MAX_STATUS_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_UNIT_CHARS",
    "DeviceMeta",
    "Location",
    "SensorMeta",
    "Status",
    "decode_meta",
    "decode_status",
    "encode_meta",
    "encode_status",
]

MAX_STATUS_BYTES = 4 * 1024
MAX_META_BYTES = 64 * 1024
MAX_SENSORS_PER_DEVICE = 64
MAX_METRICS_PER_SENSOR = 32
MAX_TEXT_CHARS = 200  # names, drivers, versions, firmware, the status timestamp
MAX_UNIT_CHARS = 24  # as for a reading's unit

Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Unit = Annotated[str, Field(max_length=MAX_UNIT_CHARS)]


class Location(BaseModel):
    """Where a device stands (WGS 84)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class SensorMeta(BaseModel):
    """One sensor of a device and the metrics (name -> unit) it reports."""

    model_config = ConfigDict(extra="allow")

    name: SensorName
    driver: Text
    metrics: dict[SensorName, Unit] = Field(max_length=MAX_METRICS_PER_SENSOR)


class DeviceMeta(BaseModel):
    """The retained ``meta`` payload."""

    model_config = ConfigDict(extra="allow")

    site: Text
    device: Text
    kind: Literal["environment", "machine", "mixed"] = "environment"
    name: Text | None = None
    location: Location | None = None
    sensors: list[SensorMeta] = Field([], max_length=MAX_SENSORS_PER_DEVICE)
    firmware: Text | None = None
    version: Text | None = None


class Status(BaseModel):
    """The retained ``status`` payload; the broker's last will publishes ``offline``."""

    model_config = ConfigDict(extra="allow")

    state: Literal["online", "offline"]
    ts: Text | None = None
    version: Text | None = None
    uptime_s: float | None = None
    buffered: int | None = Field(None, description="readings waiting on the device")
    dropped: int | None = Field(None, description="readings the device discarded (full buffer)")


M = TypeVar("M", bound=BaseModel)


def _decode(model: type[M], payload: bytes, max_bytes: int) -> M:
    if len(payload) > max_bytes:
        raise BadReading("oversized", f"{model.__name__} payload of {len(payload)} bytes "
                                      f"exceeds {max_bytes}")
    body = load_json(payload)
    try:  # what is kept is stored and served as UTF-8 JSON: refuse what cannot be
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # e.g. "\udfff", a lone UTF-16 surrogate escape
        raise BadReading("bad_json", f"invalid {model.__name__}: a string is not valid "
                                     "Unicode (a lone UTF-16 surrogate escape)") from None
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = str(exc).splitlines()
        raise BadReading("bad_schema",
                         f"invalid {model.__name__}: {' '.join(first[:3])[:300]}") from None


def decode_status(payload: bytes) -> Status:
    """Decode a ``status`` payload or raise :class:`BadReading`."""
    return _decode(Status, payload, MAX_STATUS_BYTES)


def decode_meta(payload: bytes, topic: Topic | None = None) -> DeviceMeta:
    """Decode a ``meta`` payload or raise :class:`BadReading`; given the ``topic`` it came
    on, a meta naming another site or device is refused (``identity_mismatch``)."""
    meta = _decode(DeviceMeta, payload, MAX_META_BYTES)
    if topic is not None and (meta.site, meta.device) != (topic.site, topic.device):
        raise BadReading("identity_mismatch",
                         f"meta names {meta.site!r}/{meta.device!r} but was published on "
                         f"{topic.site!r}/{topic.device!r}: the topic is the identity")
    return meta


def _encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def encode_status(status: Status) -> bytes:
    """The ``status`` payload, as both sides of the contract read it."""
    return _encode(status)


def encode_meta(meta: DeviceMeta) -> bytes:
    """The ``meta`` payload, as both sides of the contract read it."""
    return _encode(meta)
