"""What frames mean: HELLO, readings, ACK and ERR from a device; commands from the host.

Version rule: a host understands every minor version of its major version. Fields and frame
kinds it does not know are ignored, so firmware built for 1.0 keeps working with a 1.x host
and the other way round; a device announcing another major version is refused.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fabcity.catalogue import canonical_unit
from fabcity.errors import BadReading
from fabcity.names import SITE_RE
from firmware_bridge.errors import ProtocolError, UnsupportedProtocol
from firmware_bridge.frame import Frame, encode_frame

__all__ = [
    "COMMANDS",
    "DEFAULT_IDENTIFY_S",
    "MAX_CHANNELS",
    "MAX_IDENTIFY_S",
    "MAX_INTERVAL_MS",
    "MIN_IDENTIFY_S",
    "MIN_INTERVAL_MS",
    "PROTOCOL_VERSION",
    "Ack",
    "Channel",
    "DeviceError",
    "Hello",
    "Message",
    "Readings",
    "check_identify_seconds",
    "encode_ack",
    "encode_error",
    "encode_hello",
    "encode_readings",
    "format_fixed",
    "format_number",
    "parse_message",
]

#: The protocol version this host speaks; it reads every 1.x device.
PROTOCOL_VERSION = (1, 0)
#: Commands a 1.0 device answers.
COMMANDS = ("HELLO", "PING", "INTERVAL", "IDENTIFY")
MAX_CHANNELS = 64
MIN_INTERVAL_MS = 100
MAX_INTERVAL_MS = 86_400_000
#: IDENTIFY blinks for ``s`` seconds: at least one blink, at most an hour (fits 32-bit ms).
MIN_IDENTIFY_S = 1
MAX_IDENTIFY_S = 3600
DEFAULT_IDENTIFY_S = 5
UPTIME_MODULUS = 1 << 32

CHANNEL_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
FIRMWARE_RE = re.compile(r"[0-9A-Za-z._+-]{1,32}")
ERROR_CODE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_VERSION_RE = re.compile(r"(\d{1,3})\.(\d{1,3})")
_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Channel:
    """One measured quantity a device announces: ``sensor:metric:unit`` on the wire."""

    sensor: str
    metric: str
    unit: str

    @property
    def label(self) -> str:
        return f"{self.sensor}:{self.metric}:{self.unit}"

    @classmethod
    def parse(cls, text: str) -> "Channel":
        """Parse and check ``sensor:metric:unit``; the unit comes back in canonical form."""
        parts = text.split(":")
        if len(parts) != 3:
            raise ProtocolError(f"channel {text!r}: expected sensor:metric:unit")
        sensor, metric, unit = parts
        for kind, name in (("sensor", sensor), ("metric", metric)):
            if not CHANNEL_NAME_RE.fullmatch(name):
                raise ProtocolError(
                    f"channel {text!r}: invalid {kind} {name!r}: must match "
                    f"{CHANNEL_NAME_RE.pattern}"
                )
        try:
            unit = canonical_unit(metric, unit)
        except BadReading as exc:
            raise ProtocolError(f"channel {text!r}: {exc}") from None
        return cls(sensor, metric, unit)


@dataclass(frozen=True, slots=True)
class Hello:
    """Who the device is and what it reports; channel ``i`` is key ``i`` of its readings."""

    seq: int
    uptime_ms: int
    protocol: tuple[int, int]
    device: str
    firmware: str
    channels: tuple[Channel, ...]
    interval_ms: int | None = None
    ref: int | None = None

    @property
    def protocol_text(self) -> str:
        return f"{self.protocol[0]}.{self.protocol[1]}"


@dataclass(frozen=True, slots=True)
class Readings:
    """Values by channel index, measured at ``uptime_ms`` of the device clock."""

    seq: int
    uptime_ms: int
    values: dict[int, float]


@dataclass(frozen=True, slots=True)
class Ack:
    """A command succeeded; ``fields`` holds what the device reports back (e.g. ``ms``)."""

    seq: int
    uptime_ms: int
    ref: int
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class DeviceError:
    """The device reports a problem: a refused command (``ref``) or a sensor (``channel``)."""

    seq: int
    uptime_ms: int
    code: str
    ref: int | None = None
    channel: int | None = None


Message = Hello | Readings | Ack | DeviceError


def parse_message(frame: Frame) -> Message | None:
    """Interpret a device frame; ``None`` for a kind this host does not know."""
    parser = _PARSERS.get(frame.kind)
    return parser(frame) if parser is not None else None


def _uint(frame: Frame, key: str, limit: int, *, required: bool = True) -> int | None:
    text = frame.fields.get(key)
    if text is None:
        if required:
            raise ProtocolError(f"{frame.kind} frame {frame.seq}: missing field {key!r}")
        return None
    if not (text.isdigit() and len(text) <= 10 and int(text) < limit):
        raise ProtocolError(f"{frame.kind} frame {frame.seq}: bad {key}={text!r}")
    return int(text)


def _uptime(frame: Frame) -> int:
    value = _uint(frame, "t", UPTIME_MODULUS)
    assert value is not None
    return value


def check_protocol(text: str | None, device: str, firmware: str) -> tuple[int, int]:
    """Parse a ``proto`` field and refuse a major version this host does not speak."""
    match = _VERSION_RE.fullmatch(text or "")
    if match is None:
        raise ProtocolError(f"device {device!r}: HELLO has no valid proto field "
                            f"(got {text!r}, expected e.g. proto=1.0)")
    version = (int(match[1]), int(match[2]))
    if version[0] != PROTOCOL_VERSION[0]:
        ours = f"{PROTOCOL_VERSION[0]}.x"
        advice = ("upgrade fabcity on this host (pip install -U fabcity) or flash firmware "
                  f"built for protocol {ours}" if version[0] > PROTOCOL_VERSION[0]
                  else f"flash firmware built for protocol {ours}")
        raise UnsupportedProtocol(
            f"device {device!r} (firmware {firmware}) speaks firmware protocol {text}, "
            f"this host understands protocol {ours} only: {advice}"
        )
    return version


def _parse_hello(frame: Frame) -> Hello:
    fields = frame.fields
    device = fields.get("dev", "?")
    firmware = fields.get("fw", "?")
    protocol = check_protocol(fields.get("proto"), device, firmware)
    if not SITE_RE.fullmatch(device):
        raise ProtocolError(f"HELLO: invalid device id {device!r}: must match {SITE_RE.pattern}")
    if not FIRMWARE_RE.fullmatch(firmware):
        raise ProtocolError(f"device {device!r}: invalid firmware version {firmware!r}")
    listed = fields.get("ch")
    channels = tuple(Channel.parse(text) for text in listed.split(",")) if listed else ()
    if len(channels) > MAX_CHANNELS:
        raise ProtocolError(f"device {device!r} announces {len(channels)} channels, "
                            f"at most {MAX_CHANNELS} are allowed")
    _refuse_repeated_channels(device, channels)
    return Hello(
        seq=frame.seq,
        uptime_ms=_uptime(frame),
        protocol=protocol,
        device=device,
        firmware=firmware,
        channels=channels,
        interval_ms=_uint(frame, "iv", UPTIME_MODULUS, required=False),
        ref=_uint(frame, "ref", 1 << 16, required=False),
    )


def _refuse_repeated_channels(device: str, channels: tuple[Channel, ...]) -> None:
    """Two channels with one sensor and metric would write two values into one series."""
    first: dict[tuple[str, str], int] = {}
    for index, channel in enumerate(channels):
        key = (channel.sensor, channel.metric)
        if key in first:
            raise ProtocolError(
                f"device {device!r} announces channel {channel.sensor}:{channel.metric} twice "
                f"(channels {first[key]} and {index}): each sensor:metric pair may appear "
                "once in ch, or two values would land in one series"
            )
        first[key] = index


def check_identify_seconds(value: str | int) -> int:
    """The ``s`` of an IDENTIFY command as a number, refused outside its range."""
    text = str(value)
    if not (text.isdigit() and MIN_IDENTIFY_S <= int(text) <= MAX_IDENTIFY_S):
        raise ProtocolError(f"IDENTIFY s={text!r}: seconds must be a whole number in "
                            f"{MIN_IDENTIFY_S}..{MAX_IDENTIFY_S}")
    return int(text)


def _parse_readings(frame: Frame) -> Readings:
    values: dict[int, float] = {}
    for key, text in frame.fields.items():
        if not key.isdigit():
            continue  # "t", or a field of a later minor version
        if not _NUMBER_RE.fullmatch(text) or not math.isfinite(value := float(text)):
            raise ProtocolError(f"R frame {frame.seq}: channel {key}: bad value {text!r}")
        index = int(key)
        if index >= MAX_CHANNELS:
            raise ProtocolError(f"R frame {frame.seq}: channel index {index} out of range")
        values[index] = value
    return Readings(frame.seq, _uptime(frame), values)


def _parse_ack(frame: Frame) -> Ack:
    ref = _uint(frame, "ref", 1 << 16)
    assert ref is not None
    extra = {k: v for k, v in frame.fields.items() if k not in ("t", "ref")}
    return Ack(frame.seq, _uptime(frame), ref, extra)


def _parse_error(frame: Frame) -> DeviceError:
    code = frame.fields.get("code", "")
    if not ERROR_CODE_RE.fullmatch(code):
        raise ProtocolError(f"ERR frame {frame.seq}: bad code {code!r}")
    return DeviceError(
        frame.seq,
        _uptime(frame),
        code,
        ref=_uint(frame, "ref", 1 << 16, required=False),
        channel=_uint(frame, "ch", MAX_CHANNELS, required=False),
    )


_PARSERS: dict[str, Callable[[Frame], Message]] = {
    "HELLO": _parse_hello,
    "R": _parse_readings,
    "ACK": _parse_ack,
    "ERR": _parse_error,
}


# ---- Encoding device frames (simulators, tests) --------------------------------------------


def format_fixed(mantissa: int, decimals: int) -> str:
    """``mantissa * 10**-decimals`` exactly as ``fc_field_fixed`` writes it."""
    sign = "-" if mantissa < 0 else ""
    whole, rest = divmod(abs(mantissa), 10**decimals)
    return f"{sign}{whole}.{rest:0{decimals}d}" if decimals else f"{sign}{whole}"


def format_number(value: float | int) -> str:
    """A finite number in the protocol's number syntax."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ProtocolError(f"value must be finite, got {value!r}")
    text = repr(value)
    return text.replace("e+", "e") if "e" in text else text


def encode_hello(
    seq: int,
    uptime_ms: int,
    device: str,
    firmware: str,
    channels: Sequence[Channel],
    *,
    interval_ms: int,
    ref: int | None = None,
    protocol: str = "1.0",
) -> bytes:
    """A HELLO frame, fields in the order ``fc_send_hello`` writes them."""
    fields: list[tuple[str, str | int]] = [("t", uptime_ms)]
    if ref is not None:
        fields.append(("ref", ref))
    fields += [("proto", protocol), ("dev", device), ("fw", firmware), ("iv", interval_ms)]
    if channels:
        fields.append(("ch", ",".join(c.label for c in channels)))
    return encode_frame(seq, "HELLO", fields)


def encode_readings(seq: int, uptime_ms: int, values: Mapping[int, str | float | int]) -> bytes:
    """An R frame; string values are sent as written (use :func:`format_fixed`)."""
    fields: list[tuple[str, str | int]] = [("t", uptime_ms)]
    for index, value in values.items():
        fields.append((str(index), value if isinstance(value, str) else format_number(value)))
    return encode_frame(seq, "R", fields)


def encode_ack(
    seq: int, uptime_ms: int, ref: int, extra: Mapping[str, str | int] | None = None
) -> bytes:
    """An ACK frame answering command ``ref``."""
    fields: list[tuple[str, str | int]] = [("t", uptime_ms), ("ref", ref)]
    return encode_frame(seq, "ACK", fields + list((extra or {}).items()))


def encode_error(
    seq: int, uptime_ms: int, code: str, *, ref: int | None = None, channel: int | None = None
) -> bytes:
    """An ERR frame, fields in the order ``fc_send_error`` writes them."""
    fields: list[tuple[str, str | int]] = [("t", uptime_ms)]
    if ref is not None:
        fields.append(("ref", ref))
    fields.append(("code", code))
    if channel is not None:
        fields.append(("ch", channel))
    return encode_frame(seq, "ERR", fields)
