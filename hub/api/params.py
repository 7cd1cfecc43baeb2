"""Parsing of the API's time parameters: durations (``30s``, ``5m``) and instants.

Each function raises :class:`hub.api.errors.ApiError` naming the parameter and the rule, so a
bad query parameter answers 422 with a sentence a person can act on.
"""

import math
import re

from fabcity.errors import BadReading
from fabcity.reading import parse_ts
from hub.api.errors import ApiError

__all__ = ["DURATION_UNITS_MS", "format_duration", "parse_duration", "parse_instant"]

DURATION_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
                     "w": 604_800_000}
_DURATION_RE = re.compile(r"([1-9][0-9]{0,8})([smhdw])")
_RELATIVE_RE = re.compile(r"-([0-9]{1,9})([smhdw])")
_DURATION_RULE = "a positive whole number and a unit s, m, h, d or w, e.g. 30s, 5m, 1h, 1d"
_INSTANT_RULE = ("RFC 3339 with an offset (e.g. 2026-11-26T22:05:00Z), a relative duration "
                 "(e.g. -24h, -15m) or now")
# What RFC 3339 can write: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
_MIN_MS = -62_135_596_800_000
_MAX_MS = 253_402_300_799_999


def parse_duration(parameter: str, text: str) -> int:
    """``"5m"`` -> 300000 (milliseconds)."""
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise ApiError(parameter, f"invalid duration {text!r}: expected {_DURATION_RULE}")
    return int(match[1]) * DURATION_UNITS_MS[match[2]]


def format_duration(ms: int) -> str:
    """The largest exact unit: 300000 -> ``"5m"``; 1500 -> ``"2s"`` (rounded up)."""
    for unit, size in sorted(DURATION_UNITS_MS.items(), key=lambda kv: -kv[1]):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{math.ceil(ms / 1000)}s"


def parse_instant(parameter: str, text: str, now_ms: int) -> int:
    """An absolute or relative instant, in UTC milliseconds."""
    match = _RELATIVE_RE.fullmatch(text)
    if text == "now":
        ms = now_ms
    elif match is not None:
        ms = now_ms - int(match[1]) * DURATION_UNITS_MS[match[2]]
    else:
        try:
            ms = parse_ts(text)
        except BadReading:
            raise ApiError(parameter, f"invalid time {text!r}: expected {_INSTANT_RULE}") from None
    if not _MIN_MS <= ms <= _MAX_MS:
        raise ApiError(parameter, f"time {text!r} is out of range: years 1 to 9999")
    return ms
