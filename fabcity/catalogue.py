"""The metric catalogue: canonical names, units and plausible ranges.

Units are written in ASCII on the wire (``ug/m3``, ``degC``) so every client can type them;
common spellings (``µg/m³``, ``°C``) are accepted and normalised. A reading of a catalogued
metric must carry its canonical unit (or an alias of it): fabcity never converts silently.
Metrics outside the catalogue are accepted with the unit they declare.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from fabcity.errors import BadReading

__all__ = ["CATALOGUE", "UNIT_RE", "Metric", "canonical_unit", "lookup", "normalise_unit"]

MetricKind = Literal["gauge", "counter", "binary"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One catalogued metric; ``low``/``high`` bound what a working sensor can report."""

    name: str
    unit: str
    description: str
    kind: MetricKind = "gauge"
    low: float | None = None
    high: float | None = None


_METRICS = [
    Metric("temperature", "degC", "Air or surface temperature", low=-60, high=100),
    Metric("humidity", "%", "Relative humidity", low=0, high=100),
    Metric("pressure", "hPa", "Barometric pressure", low=300, high=1100),
    Metric("pm1", "ug/m3", "Particulate matter below 1 µm", low=0, high=1000),
    Metric("pm2_5", "ug/m3", "Particulate matter below 2.5 µm", low=0, high=1000),
    Metric("pm10", "ug/m3", "Particulate matter below 10 µm", low=0, high=2000),
    Metric("co2", "ppm", "Carbon dioxide concentration", low=0, high=40000),
    Metric("noise", "dBA", "A-weighted sound level", low=0, high=140),
    Metric("light", "lx", "Illuminance", low=0, high=200000),
    Metric("voltage", "V", "Electric potential", low=-1000, high=1000),
    Metric("current", "A", "Electric current (RMS)", low=0, high=1000),
    Metric("power", "W", "Electric power", low=0, high=1_000_000),
    Metric("energy", "Wh", "Electric energy, a monotonic counter", kind="counter", low=0),
    Metric("state", "bool", "Machine running (1) or idle (0)", kind="binary", low=0, high=1),
    Metric("door_open", "bool", "Door open (1) or closed (0)", kind="binary", low=0, high=1),
    Metric("motion", "bool", "Motion detected (1) or not (0)", kind="binary", low=0, high=1),
    Metric("button", "bool", "Button pressed (1) or released (0)", kind="binary", low=0, high=1),
]

CATALOGUE: dict[str, Metric] = {m.name: m for m in _METRICS}

UNIT_RE = re.compile(r"[A-Za-z0-9%/._()^*-]{1,24}")

_UNIT_ALIASES = {
    "°c": "degC", "c": "degC", "degc": "degC", "celsius": "degC", "cel": "degC",
    "µg/m³": "ug/m3", "µg/m3": "ug/m3", "μg/m³": "ug/m3", "μg/m3": "ug/m3", "ug/m³": "ug/m3",
    "ug/m3": "ug/m3",
    "db(a)": "dBA", "dba": "dBA", "db": "dBA",
    "lux": "lx", "lx": "lx",
    "percent": "%", "%rh": "%", "%": "%",
    "hpa": "hPa", "mbar": "hPa",
    "ppm": "ppm", "w": "W", "wh": "Wh", "a": "A", "v": "V",
    "bool": "bool", "boolean": "bool",
}


def normalise_unit(unit: str) -> str:
    """Map a known spelling to its canonical ASCII form; leave other units as written."""
    return _UNIT_ALIASES.get(unit.strip().lower(), unit.strip())


def lookup(metric: str) -> Metric | None:
    """The catalogue entry for ``metric``, or ``None`` for a metric outside it."""
    return CATALOGUE.get(metric)


def canonical_unit(metric: str, unit: object) -> str:
    """Return the unit a reading of ``metric`` is stored with, or raise :class:`BadReading`.

    ``unit=None`` means "not stated": catalogued metrics take their canonical unit, others
    must state one.
    """
    if unit is None or isinstance(unit, str):
        return _canonical_unit(metric, unit)
    raise BadReading("bad_unit", f"unit of {metric!r} must be a string, got {unit!r}")


@lru_cache(maxsize=4096)  # the hub sees the same few (metric, unit) pairs millions of times
def _canonical_unit(metric: str, unit: str | None) -> str:
    known = CATALOGUE.get(metric)
    if unit is None:
        if known is None:
            raise BadReading("bad_unit", f"metric {metric!r} is not catalogued: it needs a unit")
        return known.unit
    normal = normalise_unit(unit)
    if known is not None:
        if normal != known.unit:
            raise BadReading(
                "unit_mismatch",
                f"metric {metric!r} is measured in {known.unit!r}, got {unit!r}",
            )
        return normal
    if UNIT_RE.fullmatch(normal) is None:
        raise BadReading("bad_unit", f"invalid unit {unit!r}: must match {UNIT_RE.pattern}")
    return normal
