"""The reading: one value of one metric of one sensor at one instant.

Identity is ``(site, device, sensor, metric, ts_ms)``: a replayed reading has the same identity,
so every stage can be idempotent.
"""

import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from fabcity.catalogue import canonical_unit
from fabcity.errors import BadReading
from fabcity.names import SENSOR_RE, check_device, check_metric, check_sensor, check_site

__all__ = ["Reading", "format_ts", "now_ms", "parse_ts"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)

# Names seen valid before skip the regex: the hub meets the same few names millions of times.
_valid_names: set[tuple[str, str, str, str]] = set()
_MAX_CACHED_NAMES = 100_000


def now_ms() -> int:
    """Current UTC time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def format_ts(ts_ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-26T22:05:00.123Z``."""
    dt = _EPOCH + timedelta(milliseconds=ts_ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# RFC 3339 section 5.6, exactly: full-date "T" full-time, "T"/"t" and "Z"/"z", an optional
# fraction with "." only, an offset "Z" or +hh:mm / -hh:mm. No week dates, no ",5", no missing
# seconds, no "+0000": Python's fromisoformat takes all of those, so it only computes.
_RFC3339 = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
_fromisoformat = datetime.fromisoformat
_MINUTE_MS = 60_000
_DAY_MS = 86_400_000
# Fast path: readings come in runs of one minute ("2026-11-26T22:05:"), so the minute of a
# "…:SS.mmmZ" or "…:SS.mmm+hh:mm" timestamp is parsed once (in UTC; offsets are whole
# minutes) and its seconds and milliseconds are looked up.
_minutes: dict[str, int] = {}
_MAX_CACHED_MINUTES = 4096
_SECONDS_MS = {f"{s:02d}": s * 1000 for s in range(60)}
_MILLIS = {f"{m:03d}": m for m in range(1000)}


def parse_ts(text: object) -> int:
    """Parse an RFC 3339 timestamp (section 5.6) into UTC milliseconds.

    Further fraction digits are truncated; a leap second (``23:59:60Z``) is stored as
    ``23:59:59.999``, the last millisecond the epoch count can name.
    """
    if type(text) is str and text[19:20] == ".":
        # Key: the minute and the offset around the milliseconds ("2026-11-26T22:05:" "Z").
        base = _minutes.get(text[:17] + text[23:])  # .get: a raised KeyError is slow
        if base is not None:
            seconds = _SECONDS_MS.get(text[17:19])
            millis = _MILLIS.get(text[20:23])
            if seconds is not None and millis is not None:
                return base + seconds + millis
    return _parse_ts_slow(text)


def _parse_ts_slow(text: object) -> int:
    if type(text) is not str or _RFC3339.fullmatch(text) is None:
        raise BadReading("bad_timestamp", f"invalid timestamp {_short(text)}: expected RFC 3339, "
                                          "e.g. 2026-11-26T22:05:00.123Z")
    # The offset is applied by hand: subtracting aware datetimes costs 0.7 us more each.
    if text[-1] in "Zz":
        body, offset_ms = text[:-1], 0
    else:
        body = text[:-6]
        offset_ms = (int(text[-5:-3]) * 60 + int(text[-2:])) * _MINUTE_MS
        if text[-6] == "-":
            offset_ms = -offset_ms
    if text[10] != "T":
        body = body[:10] + "T" + body[11:]
    leap = body[17:19] == "60"
    if leap:
        body = body[:17] + "59" + body[19:]
    try:
        ms = (_fromisoformat(body) - _NAIVE_EPOCH) // _MS - offset_ms
    except ValueError:  # the grammar holds but the date does not exist (February 30)
        raise BadReading("bad_timestamp", f"invalid timestamp {text!r}: no such date") from None
    if leap:
        ms = ms - ms % 1000 + 999
        if ms % _DAY_MS // _MINUTE_MS != 1439:  # leap seconds end a UTC day, at 23:59
            raise BadReading("bad_timestamp",
                             f"invalid timestamp {text!r}: a leap second is 23:59:60 UTC")
    elif text[19] == "." and ((len(text) == 24 and text[23] == "Z")
                              or (len(text) == 29 and text[23] in "+-")):
        # Exactly three fraction digits, then "Z" or an offset: the fast path's shape.
        if len(_minutes) >= _MAX_CACHED_MINUTES:
            _minutes.clear()
        _minutes[text[:17] + text[23:]] = ms - ms % _MINUTE_MS
    return ms


def _short(value: object) -> str:
    """A value for an error message, cut so a megabyte string does not reach the logs."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_value(value: object) -> float:
    if type(value) is float and value - value == 0.0:  # fast path: finite float
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadReading("bad_value", f"value must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadReading("bad_value", f"value must be finite, got {value!r}")
    try:
        result = float(value)
    except OverflowError:  # an int beyond the float range
        raise BadReading("bad_value", f"value out of range: {value!r}") from None
    return result


def _check_flags(flags: object) -> tuple[str, ...]:
    if not isinstance(flags, tuple | list) or not all(
        isinstance(f, str) and SENSOR_RE.fullmatch(f) for f in flags
    ):
        raise BadReading("bad_flags", f"flags must be a list of names, got {flags!r}")
    return tuple(flags)


class _ReadingFields(NamedTuple):
    site: str
    device: str
    sensor: str
    metric: str
    value: float
    ts_ms: int
    unit: str | None = None
    flags: tuple[str, ...] = ()


class Reading(_ReadingFields):
    """A validated reading; construction refuses anything the wire contract refuses.

    ``unit=None`` takes the catalogue's canonical unit; ``flags`` marks data-quality notes
    such as ``suspect_humidity`` without dropping the value. Immutable (a named tuple: the
    hub builds hundreds of thousands a second, and a frozen dataclass costs twice as much);
    :meth:`replace` gives a changed, re-validated copy.
    """

    __slots__ = ()

    def __new__(
        cls,
        site: str,
        device: str,
        sensor: str,
        metric: str,
        value: float,
        ts_ms: int,
        unit: str | None = None,
        flags: tuple[str, ...] = (),
    ) -> "Reading":
        names = (site, device, sensor, metric)
        try:
            cached = names in _valid_names
        except TypeError:  # an unhashable name (a list, an object) is invalid anyway
            cached = False
        if not cached:
            check_site(site)
            check_device(device)
            check_sensor(sensor)
            check_metric(metric)
            if len(_valid_names) < _MAX_CACHED_NAMES:
                _valid_names.add(names)
        if type(ts_ms) is not int:
            raise BadReading("bad_timestamp", f"ts_ms must be an integer, got {ts_ms!r}")
        if flags != ():  # null, "" or {} on the wire are refused too
            flags = _check_flags(flags)
        return tuple.__new__(cls, (site, device, sensor, metric, _check_value(value), ts_ms,
                                   canonical_unit(metric, unit), flags))

    def replace(self, **changes: Any) -> "Reading":
        """A copy with ``changes`` applied, validated like a new reading."""
        return Reading(**{**self._asdict(), **changes})

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        """The identity of the reading."""
        return (self.site, self.device, self.sensor, self.metric, self.ts_ms)

    @property
    def ts(self) -> str:
        """The timestamp as RFC 3339 UTC."""
        return format_ts(self.ts_ms)
