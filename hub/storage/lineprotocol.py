"""InfluxDB line protocol for readings and rollup rows, built with plain string formatting.

Schema shared by both InfluxDB back-ends: measurement = metric; tags ``site``, ``device``,
``sensor`` and ``unit`` (left out when the reading has none); field ``value`` (always a float)
and ``flags`` (a string, only when the reading has flags); timestamps in milliseconds
(``precision=ms``). Rollup rows keep measurement and tags and carry the fields ``count``,
``sum``, ``min``, ``max``, ``first``, ``last`` and ``increase``, all floats.

Names are validated against narrow charsets, so escaping changes nothing for them; it is done
anyway as a second wall. Units are free text: a unit that line protocol cannot carry
(a line break or a backslash, which InfluxDB 1.x leaves unescaped in tags) is refused.
The escaped series prefix is cached: the hub writes the same few series millions of times.
"""

import math
from collections.abc import Iterable, Sequence

from fabcity.errors import ReadingsRefused
from fabcity.reading import Reading
from hub.storage.base import BucketStats

__all__ = [
    "escape_field_string",
    "escape_measurement",
    "escape_tag",
    "reading_bodies",
    "reading_lines",
    "rollup_bodies",
    "rollup_lines",
]

_MAX_CACHED_PREFIXES = 100_000
_prefixes: dict[tuple[str, str, str, str, str | None], str] = {}


def escape_measurement(name: str) -> str:
    """Escape commas and spaces, as a measurement name needs."""
    return name.replace(",", "\\,").replace(" ", "\\ ")


def escape_tag(text: str) -> str:
    """Escape commas, equals signs and spaces, as tag keys and values need."""
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def escape_field_string(text: str) -> str:
    """A double-quoted string field value: backslashes and double quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_unit(unit: str) -> None:
    if "\\" in unit or "\n" in unit or "\r" in unit:
        raise ReadingsRefused(f"unit {unit!r} cannot be stored as an InfluxDB tag "
                              "(backslashes and line breaks are not representable)")


def series_prefix(metric: str, site: str, device: str, sensor: str, unit: str | None) -> str:
    """``metric,site=…,device=…,sensor=…[,unit=…]``, escaped (cached)."""
    key = (metric, site, device, sensor, unit)
    prefix = _prefixes.get(key)
    if prefix is None:
        prefix = (f"{escape_measurement(metric)},site={escape_tag(site)},"
                  f"device={escape_tag(device)},sensor={escape_tag(sensor)}")
        if unit:
            _check_unit(unit)
            prefix += f",unit={escape_tag(unit)}"
        if len(_prefixes) < _MAX_CACHED_PREFIXES:
            _prefixes[key] = prefix
    return prefix


def _reading_strs(readings: Iterable[Reading]) -> list[str]:
    """One line per reading (no newline). ``value`` is a float: ``repr`` gives ``1.0``."""
    lines: list[str] = []
    append = lines.append
    cache = _prefixes
    for site, device, sensor, metric, value, ts_ms, unit, flags in readings:
        prefix = cache.get((metric, site, device, sensor, unit))
        if prefix is None:
            prefix = series_prefix(metric, site, device, sensor, unit)
        if flags:
            append(f"{prefix} value={float(value)!r},flags="
                   f"{escape_field_string(','.join(flags))} {ts_ms}")
        else:
            append(f"{prefix} value={float(value)!r} {ts_ms}")
    return lines


def _bodies(lines: list[str], batch_size: int) -> list[bytes]:
    return ["\n".join(lines[i:i + batch_size]).encode()
            for i in range(0, len(lines), batch_size)]


def reading_lines(readings: Iterable[Reading]) -> list[bytes]:
    """One encoded line per reading."""
    return [line.encode() for line in _reading_strs(readings)]


def reading_bodies(readings: Iterable[Reading], batch_size: int = 5000) -> list[bytes]:
    """Request bodies of at most ``batch_size`` lines each, ready to POST to a write API.

    Faster than :func:`reading_lines`: each body is encoded once.
    """
    return _bodies(_reading_strs(readings), batch_size)


def rollup_lines(rows: Sequence[BucketStats]) -> list[bytes]:
    """One encoded line per rollup row, timestamped with the bucket start."""
    return [line.encode() for line in _rollup_strs(rows)]


def rollup_bodies(rows: Sequence[BucketStats], batch_size: int = 5000) -> list[bytes]:
    """Rollup rows as request bodies of at most ``batch_size`` lines each."""
    return _bodies(_rollup_strs(rows), batch_size)


def _rollup_strs(rows: Sequence[BucketStats]) -> list[str]:
    return [f"{series_prefix(r.metric, r.site, r.device, r.sensor, r.unit)} "
            f"{_rollup_fields(r)} {r.start_ms}" for r in rows]


def _rollup_fields(r: BucketStats) -> str:
    """The statistics as fields; a sum or rise beyond the float range (line protocol has
    no infinity: InfluxDB refuses the line) is left out, and read back as NaN."""
    stats = (("count", float(r.count)), ("sum", r.sum), ("min", r.min), ("max", r.max),
             ("first", r.first), ("last", r.last), ("increase", r.increase))
    return ",".join(f"{name}={float(value)!r}" for name, value in stats
                    if math.isfinite(value))
