"""Air-quality indices: the US EPA AQI (2024 breakpoints, NowCast), the European CAQI and the
WHO 2021 guidelines. Standard library only, so an edge Pi can compute an index too.

Each index function answers an :class:`AirIndex` (index, machine category, label, colour and
the breakpoint band used) or raises :class:`ValueError` with a sentence saying why: a negative
or non-finite concentration, a pollutant the standard does not grade, or a concentration above
the top of the scale (:class:`BeyondIndex`). Tables and sources: ``docs/air-quality.md``.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal

__all__ = [
    "CAQI_POLLUTANTS",
    "EPA_POLLUTANTS",
    "MOLAR_MASS_G",
    "MOLAR_VOLUME_20C_L",
    "MOLAR_VOLUME_25C_L",
    "NOWCAST_HOURS",
    "NOWCAST_MIN_WEIGHT",
    "WHO_GUIDELINES",
    "AirIndex",
    "Band",
    "BeyondIndex",
    "InsufficientData",
    "WhoGuideline",
    "WhoIndicators",
    "convert",
    "eu_caqi",
    "nowcast",
    "us_epa",
    "who_indicators",
]

Period = Literal["hourly", "daily"]


@dataclass(frozen=True, slots=True)
class Band:
    """One row of a breakpoint table; ``None`` highs mean the band is open-ended."""

    concentration_low: float
    concentration_high: float | None
    index_low: int
    index_high: int | None


@dataclass(frozen=True, slots=True)
class AirIndex:
    """The index of one pollutant's concentration under one standard."""

    standard: str  # "us-epa" or "eu-caqi"
    pollutant: str
    concentration: float  # as graded: after the standard's truncation
    unit: str
    index: int
    category: str  # stable machine key, e.g. "unhealthy_sensitive", "very_low"
    label: str
    colour: str  # "#rrggbb"
    band: Band


class BeyondIndex(ValueError):
    """The concentration is above the top of the standard's scale ("beyond the AQI")."""

    def __init__(self, message: str, category: str, label: str, colour: str) -> None:
        super().__init__(message)
        self.category, self.label, self.colour = category, label, colour


class InsufficientData(ValueError):
    """Too few hours to compute an average the standard accepts."""


def _finite_non_negative(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return float(value)


# -- US EPA AQI --------------------------------------------------------------------------

_EPA_CATEGORIES = (  # key, label, colour: the six categories of the technical document
    ("good", "Good", "#00E400"),
    ("moderate", "Moderate", "#FFFF00"),
    ("unhealthy_sensitive", "Unhealthy for Sensitive Groups", "#FF7E00"),
    ("unhealthy", "Unhealthy", "#FF0000"),
    ("very_unhealthy", "Very Unhealthy", "#8F3F97"),
    ("hazardous", "Hazardous", "#7E0023"),
)
_EPA_INDEX = ((0, 50), (51, 100), (101, 150), (151, 200), (201, 300), (301, 500))


@dataclass(frozen=True, slots=True)
class _EpaTable:
    unit: str
    step: Decimal  # truncation: concentrations are cut down to a multiple of this
    first: int  # category number of the first row (1-hour ozone starts at 101-150)
    rows: tuple[tuple[str, str], ...]


_EPA: dict[str, _EpaTable] = {
    "pm2_5": _EpaTable("ug/m3", Decimal("0.1"), 0, (
        ("0.0", "9.0"), ("9.1", "35.4"), ("35.5", "55.4"), ("55.5", "125.4"),
        ("125.5", "225.4"), ("225.5", "325.4"))),
    "pm10": _EpaTable("ug/m3", Decimal("1"), 0, (
        ("0", "54"), ("55", "154"), ("155", "254"), ("255", "354"), ("355", "424"),
        ("425", "604"))),
    "o3_8h": _EpaTable("ppm", Decimal("0.001"), 0, (
        ("0.000", "0.054"), ("0.055", "0.070"), ("0.071", "0.085"), ("0.086", "0.105"),
        ("0.106", "0.200"))),
    "o3_1h": _EpaTable("ppm", Decimal("0.001"), 2, (
        ("0.125", "0.164"), ("0.165", "0.204"), ("0.205", "0.404"), ("0.405", "0.604"))),
    "co": _EpaTable("ppm", Decimal("0.1"), 0, (
        ("0.0", "4.4"), ("4.5", "9.4"), ("9.5", "12.4"), ("12.5", "15.4"), ("15.5", "30.4"),
        ("30.5", "50.4"))),
    "no2": _EpaTable("ppb", Decimal("1"), 0, (
        ("0", "53"), ("54", "100"), ("101", "360"), ("361", "649"), ("650", "1249"),
        ("1250", "2049"))),
}
#: Pollutant key -> the unit its concentration is given in.
EPA_POLLUTANTS: dict[str, str] = {name: table.unit for name, table in _EPA.items()}


FLOAT_NOISE = Decimal("1e-9")  # averages of floats drift by ~1e-15: not a real difference


def _exact(value: float) -> Decimal:
    """The decimal a float stands for: repr() is the shortest decimal that round-trips (0.29,
    not 0.28999…), and drift below 1e-9 is rounded off, so the NowCast of a steady 9.1 (in
    binary 9.0999…98) is graded as 9.1."""
    return Decimal(repr(value)).quantize(FLOAT_NOISE, rounding=ROUND_HALF_UP)


def _truncate(value: float, step: Decimal) -> Decimal:
    return _exact(value).quantize(step, rounding=ROUND_DOWN)


def us_epa(pollutant: str, concentration: float) -> AirIndex:
    """The US EPA AQI of one pollutant's concentration, averaged as the standard prescribes
    (PM: 24-hour or NowCast; ``o3_8h``/``co``: 8-hour; ``o3_1h``/``no2``: 1-hour).

    The concentration is truncated (PM2.5 to 0.1 ug/m3, PM10 to 1 ug/m3, ozone to 0.001 ppm,
    CO to 0.1 ppm, NO2 to 1 ppb), placed in its band and interpolated linearly; the index is
    rounded to the nearest integer, halves up.
    """
    table = _EPA.get(pollutant)
    if table is None:
        raise ValueError(f"US EPA AQI: unknown pollutant {pollutant!r}; "
                         f"expected one of {', '.join(_EPA)}")
    value = _finite_non_negative(f"{pollutant} concentration", concentration)
    c = _truncate(value, table.step)
    top = Decimal(table.rows[-1][1])
    if c > top:
        if pollutant == "o3_8h":
            raise ValueError(f"8-hour ozone above {top} ppm defines no AQI (the scale "
                             "continues with 1-hour ozone): grade the 1-hour value")
        key, label, colour = _EPA_CATEGORIES[-1]
        raise BeyondIndex(f"{pollutant} {c} {table.unit} is beyond the AQI (above {top} "
                          f"{table.unit}, AQI 500)", key, label, colour)
    for n, (low_text, high_text) in enumerate(table.rows, start=table.first):
        low, high = Decimal(low_text), Decimal(high_text)
        if c <= high:
            if c < low:  # only below the first row: 1-hour ozone under 0.125 ppm
                raise ValueError(f"1-hour ozone below {low} ppm defines no AQI: grade the "
                                 "8-hour value")
            i_low, i_high = _EPA_INDEX[n]
            # Multiply before dividing: 50 * 1.1 / 4.4 is 12.5 exactly, so it rounds up.
            index = Decimal(i_high - i_low) * (c - low) / (high - low) + i_low
            key, label, colour = _EPA_CATEGORIES[n]
            return AirIndex(
                "us-epa", pollutant, float(c), table.unit,
                int(index.quantize(Decimal(1), rounding=ROUND_HALF_UP)), key, label, colour,
                Band(float(low), float(high), i_low, i_high))
    raise AssertionError("unreachable: c <= top")  # pragma: no cover


NOWCAST_HOURS = 12
NOWCAST_MIN_WEIGHT = 0.5


def nowcast(hourly_values: Sequence[float | None]) -> float:
    """The EPA NowCast of hourly PM means given oldest first (the last item is the most
    recent complete hour; ``None`` marks a missing hour). Only the last 12 hours count.

    Each hour back weighs ``w`` times the one after it, with ``w`` the ratio of the lowest to
    the highest hour, but at least 0.5: a steady series approaches a 12-hour mean, a changing
    one follows its recent hours. Needs 2 of the 3 most recent hours, else
    :class:`InsufficientData`.
    """
    recent_first = list(hourly_values)[-NOWCAST_HOURS:][::-1]
    if sum(v is not None for v in recent_first[:3]) < 2:
        raise InsufficientData("NowCast needs at least 2 of the 3 most recent hours")
    present = [(age, _finite_non_negative("hourly mean", v))
               for age, v in enumerate(recent_first) if v is not None]
    highest = max(v for _, v in present)
    if highest == 0:
        return 0.0
    w = max(min(v for _, v in present) / highest, NOWCAST_MIN_WEIGHT)
    return (sum(w ** age * v for age, v in present)
            / sum(w ** age for age, _ in present))


# -- European CAQI (CITEAIR) -------------------------------------------------------------

_CAQI_CATEGORIES = (
    ("very_low", "Very low", "#79BC6A"),
    ("low", "Low", "#BBCF4C"),
    ("medium", "Medium", "#EEC20B"),
    ("high", "High", "#F29305"),
    ("very_high", "Very high", "#960018"),
)
_CAQI_INDEX = (0, 25, 50, 75, 100)
# Concentrations (ug/m3) at index 0, 25, 50, 75 and 100; the background-station grids.
_CAQI: dict[Period, dict[str, tuple[float, ...]]] = {
    "hourly": {  # hourly values; CO as an 8-hour moving mean
        "no2": (0, 50, 100, 200, 400),
        "pm10": (0, 25, 50, 90, 180),
        "pm2_5": (0, 15, 30, 55, 110),
        "o3": (0, 60, 120, 180, 240),
        "co": (0, 5000, 7500, 10000, 20000),
        "so2": (0, 50, 100, 350, 500),
    },
    "daily": {  # PM: 24-hour means; NO2, O3, SO2: the day's highest hour; CO: highest 8 h
        "no2": (0, 50, 100, 200, 400),
        "pm10": (0, 15, 30, 50, 100),
        "pm2_5": (0, 10, 20, 30, 60),
        "o3": (0, 60, 120, 180, 240),
        "co": (0, 5000, 7500, 10000, 20000),
        "so2": (0, 50, 100, 350, 500),
    },
}
#: Period -> the pollutants its grid grades (all in ug/m3).
CAQI_POLLUTANTS: dict[str, tuple[str, ...]] = {p: tuple(g) for p, g in _CAQI.items()}


def eu_caqi(pollutant: str, concentration: float, period: Period = "hourly") -> AirIndex:
    """The CITEAIR Common Air Quality Index of a concentration in ug/m3.

    A concentration at a breakpoint belongs to the lower class (``(low, high]``); the index
    interpolates linearly and is rounded halves up. Above the grid's top (index 100) the class
    is ``very_high`` and the index goes on with the slope of the ``high`` band.
    """
    grids = _CAQI.get(period)
    if grids is None:
        raise ValueError(f"CAQI: unknown period {period!r}; expected hourly or daily")
    grid = grids.get(pollutant)
    if grid is None:
        raise ValueError(f"CAQI ({period}): unknown pollutant {pollutant!r}; "
                         f"expected one of {', '.join(grids)}")
    c = float(_exact(_finite_non_negative(f"{pollutant} concentration", concentration)))
    n = next((k for k in range(1, len(grid)) if c <= grid[k]), len(grid))
    if n < len(grid):
        low, high = grid[n - 1], grid[n]
        i_low, i_high = _CAQI_INDEX[n - 1], _CAQI_INDEX[n]
        band = Band(float(low), float(high), i_low, i_high)
    else:  # very high: open-ended, extrapolated with the slope of the high band
        low, high = grid[-2], grid[-1]
        i_low, i_high = _CAQI_INDEX[-2], _CAQI_INDEX[-1]
        band = Band(float(high), None, i_high, None)
    index = i_low + (c - low) * (i_high - i_low) / (high - low)
    key, label, colour = _CAQI_CATEGORIES[n - 1]
    rounded = int(Decimal(repr(index)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return AirIndex("eu-caqi", pollutant, c, "ug/m3", rounded, key, label, colour, band)


# -- WHO 2021 air quality guidelines -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class WhoGuideline:
    """The WHO 2021 guideline levels of one pollutant (ug/m3)."""

    pollutant: str
    annual: float
    daily: float  # 24-hour mean, as the 99th percentile: 3 to 4 days a year above it


WHO_GUIDELINES: dict[str, WhoGuideline] = {
    "pm2_5": WhoGuideline("pm2_5", 5.0, 15.0),
    "pm10": WhoGuideline("pm10", 15.0, 45.0),
    "no2": WhoGuideline("no2", 10.0, 25.0),
}


@dataclass(frozen=True, slots=True)
class WhoIndicators:
    """How a year of daily means compares with the WHO 2021 guidelines."""

    pollutant: str
    unit: str
    annual_mean: float | None
    annual_guideline: float
    annual_above: bool | None  # None without data
    days_with_data: int
    days_above_daily: int  # days whose 24-hour mean is above the guideline
    daily_guideline: float


def who_indicators(pollutant: str, daily_means: Iterable[float],
                   annual_mean: float | None = None) -> WhoIndicators:
    """Compare daily means (ug/m3) and an annual mean with the WHO 2021 guidelines.

    ``annual_mean`` defaults to the mean of the daily means (each day weighs the same).
    """
    guideline = WHO_GUIDELINES.get(pollutant)
    if guideline is None:
        raise ValueError(f"WHO guidelines: unknown pollutant {pollutant!r}; "
                         f"expected one of {', '.join(WHO_GUIDELINES)}")
    days = [_finite_non_negative("daily mean", v) for v in daily_means]
    if annual_mean is None:
        annual_mean = sum(days) / len(days) if days else None
    else:
        annual_mean = _finite_non_negative("annual mean", annual_mean)
    return WhoIndicators(
        pollutant=pollutant, unit="ug/m3", annual_mean=annual_mean,
        annual_guideline=guideline.annual,
        annual_above=None if annual_mean is None else annual_mean > guideline.annual,
        days_with_data=len(days), days_above_daily=sum(v > guideline.daily for v in days),
        daily_guideline=guideline.daily)


# -- units -------------------------------------------------------------------------------

#: g/mol, for converting gas mixing ratios to mass concentrations.
MOLAR_MASS_G = {"no2": 46.0055, "o3": 47.9982, "co": 28.0101, "so2": 64.064}
#: Litres per mole of an ideal gas at 101.325 kPa: 25 degC (US EPA, WHO) and 20 degC (EU).
MOLAR_VOLUME_25C_L = 24.465
MOLAR_VOLUME_20C_L = 24.055
_MASS_UG = {"ug/m3": 1.0, "mg/m3": 1000.0}
_RATIO_PPB = {"ppb": 1.0, "ppm": 1000.0}


def convert(pollutant: str, value: float, from_unit: str, to_unit: str,
            molar_volume_l: float = MOLAR_VOLUME_25C_L) -> float:
    """Convert between ``ppb``, ``ppm``, ``ug/m3`` and ``mg/m3``; crossing from a mixing
    ratio to a mass concentration uses the gas's molar mass at ``molar_volume_l``."""
    scales = {**_MASS_UG, **_RATIO_PPB}
    if from_unit not in scales or to_unit not in scales:
        raise ValueError(f"cannot convert {pollutant} from {from_unit!r} to {to_unit!r}: "
                         f"units must be one of {', '.join(scales)}")
    base = value * scales[from_unit]  # in ug/m3 or ppb
    if (from_unit in _MASS_UG) != (to_unit in _MASS_UG):
        mass = MOLAR_MASS_G.get(pollutant)
        if mass is None:
            raise ValueError(f"cannot convert {pollutant} between ppb and ug/m3: "
                             "no molar mass known")
        base = base * mass / molar_volume_l if from_unit in _RATIO_PPB \
            else base * molar_volume_l / mass
    return base / scales[to_unit]
