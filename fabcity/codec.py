"""JSON codec of wire contract v1: the one place both sides encode and decode payloads."""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fabcity.catalogue import canonical_unit
from fabcity.errors import BadReading
from fabcity.names import SENSOR_RE, check_metric, check_sensor
from fabcity.reading import Reading, format_ts, now_ms, parse_ts
from fabcity.topic import Kind, Topic

_fast_loads: Callable[[bytes], Any] | None
try:  # the hub's extra; an edge agent never decodes readings and goes without
    import orjson

    _fast_loads = orjson.loads
    _FastDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - the hub installs it
    _fast_loads, _FastDecodeError = None, ValueError

__all__ = [
    "MAX_AGE_S",
    "MAX_FUTURE_S",
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_BATCH",
    "Batch",
    "decode_batch",
    "encode_batch",
    "load_json",
    "reading_to_dict",
]

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_READINGS_PER_BATCH = 5_000
MAX_FUTURE_S = 300  # clocks drift; beyond five minutes ahead a timestamp is wrong
MAX_AGE_S = 400 * 86_400  # an edge buffer may hold readings through a long outage


class HugeInteger:
    """Stands for a JSON integer too long for Python's int (4,300 digits): far beyond any
    double, so the value it sits in is refused like any other out-of-range value."""

    __slots__ = ("digits",)

    def __init__(self, literal: str) -> None:
        self.digits = len(literal.lstrip("-"))

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def _parse_int(literal: str) -> int | HugeInteger:
    try:
        return int(literal)
    except ValueError:  # Python's int-string limit (sys.get_int_max_str_digits)
        return HugeInteger(literal)


def load_json(payload: bytes) -> object:
    """Parse a UTF-8 JSON payload or raise ``bad_json``; integers too long for ``int`` become
    :class:`HugeInteger` so the field they sit in is refused, not the whole message."""
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise BadReading("bad_json", f"payload is not UTF-8 JSON: {exc}") from None
    try:
        return json.loads(text)  # NaN/Infinity parse, then fail per reading
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise BadReading("bad_json", f"payload is not UTF-8 JSON: {exc}") from None
    except RecursionError as exc:
        raise BadReading("bad_json", f"payload is not UTF-8 JSON: {exc}") from None
    try:  # rare: only now pay for a Python call per integer
        return json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:
        raise BadReading("bad_json", f"payload is not UTF-8 JSON: {exc}") from None


@dataclass(slots=True)
class Batch:
    """A decoded ``readings`` message: the good readings and why the others were refused."""

    seq: int
    readings: list[Reading]
    rejected: list[BadReading] = field(default_factory=list)
    #: The sequence number of the batch's first reading (``seq`` if the device numbers batches).
    first: int = 0
    #: Whether the device asked the hub to confirm the batch on its ``ack`` topic.
    confirm: bool = False


def reading_to_dict(reading: Reading) -> dict[str, object]:
    """The wire form of one reading (site and device travel in the topic)."""
    item: dict[str, object] = {
        "sensor": reading.sensor,
        "metric": reading.metric,
        "value": reading.value,
        "unit": reading.unit,
        "ts": format_ts(reading.ts_ms),
    }
    if reading.flags:
        item["flags"] = list(reading.flags)
    return item


def encode_batch(seq: int, readings: Iterable[Reading], *, first: int | None = None,
                 confirm: bool = False) -> bytes:
    """Encode readings of one device as a ``readings`` payload; ``confirm`` asks the hub for
    an ``ack`` of the sequence numbers ``first`` to ``seq`` once they are stored."""
    body: dict[str, object] = {"seq": seq}
    if confirm:
        body["first"] = seq if first is None else first
        body["confirm"] = True
    body["readings"] = [reading_to_dict(r) for r in readings]
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_batch(
    topic: Topic,
    payload: bytes,
    *,
    now: int | None = None,
    max_future_s: float = MAX_FUTURE_S,
    max_age_s: float = MAX_AGE_S,
) -> Batch:
    """Decode a ``readings`` payload published on ``topic``.

    A message that is not a batch at all raises :class:`BadReading`; a bad reading inside a
    good batch is listed in ``Batch.rejected`` and the rest of the batch is kept.
    """
    if topic.kind is not Kind.READINGS:
        raise BadReading("unknown_kind", f"{topic} does not carry readings")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadReading(
            "oversized", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
        )
    current = now_ms() if now is None else now
    latest = current + int(max_future_s * 1000)
    earliest = current - int(max_age_s * 1000)
    if _fast_loads is not None:
        fast = _decode_plain(topic, payload, earliest, latest)
        if fast is not None:
            return fast
    body = load_json(payload)
    if not isinstance(body, dict):
        raise BadReading("bad_schema", "payload must be a JSON object with 'seq' and 'readings'")
    seq = body.get("seq", 0)
    items = body.get("readings")
    if type(seq) is not int or seq < 0:
        raise BadReading("bad_schema", f"'seq' must be a non-negative integer, got {seq!r}")
    if not isinstance(items, list):
        raise BadReading("bad_schema", "'readings' must be a list")
    first = body.get("first", seq)
    confirm = body.get("confirm", False)
    if type(first) is not int or not 0 <= first <= seq:
        raise BadReading("bad_schema", f"'first' must be an integer from 0 to 'seq', "
                                       f"got {first!r}")
    if type(confirm) is not bool:
        raise BadReading("bad_schema", f"'confirm' must be true or false, got {confirm!r}")
    if len(items) > MAX_READINGS_PER_BATCH:
        raise BadReading(
            "oversized", f"{len(items)} readings exceed {MAX_READINGS_PER_BATCH} per message"
        )
    batch = Batch(seq=seq, readings=[], first=first, confirm=confirm)
    timestamps: dict[str, int] = {}  # readings of one batch share a few timestamps
    for index, item in enumerate(items):
        try:
            batch.readings.append(_decode_reading(topic, item, earliest, latest, timestamps))
        except BadReading as exc:
            batch.rejected.append(BadReading(exc.reason, f"readings[{index}]: {exc}"))
    return batch


def _decode_reading(
    topic: Topic, item: object, earliest: int, latest: int, timestamps: dict[str, int]
) -> Reading:
    if not isinstance(item, dict):
        raise BadReading("bad_schema", "each reading must be an object")
    try:
        sensor, metric, value, ts = item["sensor"], item["metric"], item["value"], item["ts"]
    except KeyError as exc:
        raise BadReading("bad_schema", f"missing field {exc.args[0]!r}") from None
    ts_ms = timestamps.get(ts) if isinstance(ts, str) else None
    if ts_ms is None:
        ts_ms = parse_ts(ts)
        timestamps[ts] = ts_ms
    if ts_ms > latest:
        raise BadReading("future_timestamp", f"timestamp {ts} is in the future")
    if ts_ms < earliest:
        raise BadReading("stale_timestamp", f"timestamp {ts} is too old")
    return Reading(
        site=topic.site,
        device=topic.device,
        sensor=sensor,
        metric=metric,
        value=value,
        ts_ms=ts_ms,
        unit=item.get("unit"),
        flags=item.get("flags", ()),
    )


# The fast path. Almost every message is a plain batch of good readings: orjson parses it
# (several times faster than json), names are checked once per (sensor, metric, unit) and the
# readings are built without re-checking what was just checked. Anything else (a parse error,
# an unknown field, a flag, a refused reading, a bad seq) returns None and the message is
# decoded again by the exact path above, so every rule and every reject reason stays its.
_NewReading = tuple.__new__
_checked_names: dict[tuple[str, str, str | None], str] = {}  # -> the canonical unit
_MAX_CHECKED_NAMES = 100_000


def _decode_plain(topic: Topic, payload: bytes, earliest: int, latest: int) -> Batch | None:
    """The batch if ``payload`` is a plain batch of good readings, else None."""
    assert _fast_loads is not None
    try:
        body = _fast_loads(payload)
    except _FastDecodeError:  # json may still take it (NaN, huge integers) or say why not
        return None
    if type(body) is not dict:
        return None
    seq, items = body.get("seq", 0), body.get("readings")
    first, confirm = body.get("first", seq), body.get("confirm", False)
    if len(body) != 1 + ("seq" in body) + ("first" in body) + ("confirm" in body) \
            or type(seq) is not int or seq < 0 or type(items) is not list \
            or type(first) is not int or not 0 <= first <= seq or type(confirm) is not bool \
            or len(items) > MAX_READINGS_PER_BATCH:
        return None
    site, device = topic.site, topic.device
    names, new, reading_cls = _checked_names, _NewReading, Reading
    timestamps: dict[str, int] = {}
    readings: list[Reading] = []
    append = readings.append
    for item in items:
        if type(item) is not dict:
            return None
        unit, flags = item.get("unit"), item.get("flags", ())
        if len(item) != 4 + (unit is not None) + (flags != ()):  # nothing else, nothing nested
            return None
        try:
            sensor, metric, value, ts = item["sensor"], item["metric"], item["value"], item["ts"]
            canonical = names.get((sensor, metric, unit))
        except (KeyError, TypeError):  # a missing field, a name that is a list
            return None
        if canonical is None:
            canonical = _check_names(sensor, metric, unit)
            if canonical is None:
                return None
        kind = type(value)
        if kind is int:  # orjson's integers fit 64 bits: a float takes them
            value = float(value)
        elif kind is not float or value - value != 0.0:
            return None
        ts_ms = timestamps.get(ts) if type(ts) is str else None
        if ts_ms is None:
            try:
                ts_ms = timestamps[ts] = parse_ts(ts)
            except BadReading:
                return None
        if ts_ms > latest or ts_ms < earliest:
            return None
        if flags != ():
            flags = _plain_flags(flags)
            if flags is None:
                return None
        append(new(reading_cls, (site, device, sensor, metric, value, ts_ms, canonical,
                                 flags)))
    return Batch(seq=seq, readings=readings, first=first, confirm=confirm)


def _check_names(sensor: object, metric: object, unit: object) -> str | None:
    """The canonical unit if the names and unit pass the checks of :class:`Reading`."""
    try:
        check_sensor(sensor)
        check_metric(metric)
        canonical = canonical_unit(metric, unit)  # type: ignore[arg-type]
    except BadReading:
        return None
    if len(_checked_names) < _MAX_CHECKED_NAMES:
        _checked_names[(sensor, metric, unit)] = canonical  # type: ignore[index]
    return canonical


def _plain_flags(flags: object) -> tuple[str, ...] | None:
    """The flags as :class:`Reading` keeps them, or None if it would refuse them."""
    if type(flags) is not list or not all(type(f) is str and SENSOR_RE.fullmatch(f)
                                          for f in flags):
        return None
    return tuple(flags)
