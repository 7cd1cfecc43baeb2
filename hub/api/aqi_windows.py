"""From hourly means to a device's current index: each pollutant averaged over the window its
standard prescribes, graded, and the device's index the highest of them.

Pure functions over :class:`Series` (one sensor's hourly means of one metric), so the route
stays thin and the windows are tested without a storage.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fabcity import aqi
from hub.api.aqi_models import DeviceIndexPublic, PollutantIndexPublic, Standard

__all__ = ["HOURS_NEEDED", "METRICS", "Series", "device_index"]

#: Metrics graded by each standard (metric names of the catalogue and the wire).
METRICS: dict[Standard, tuple[str, ...]] = {
    "us-epa": ("pm2_5", "pm10", "o3", "no2", "co"),
    "eu-caqi": ("pm2_5", "pm10", "o3", "no2", "co", "so2"),
}
#: Hourly means to fetch before the index hour: NowCast looks 12 hours back.
HOURS_NEEDED = aqi.NOWCAST_HOURS
EIGHT_HOURS = 8
EIGHT_HOURS_MIN_PRESENT = 6  # 75 % of the hours, as for the EPA's 8-hour averages
O3_1H_FROM_PPM = 0.125  # 1-hour ozone grades only from here (below it 8-hour ozone rules)


@dataclass
class Series:
    """One sensor's hourly means of one metric; ``hours[-1]`` is the last complete hour."""

    sensor: str
    metric: str
    unit: str | None
    hours: list[float | None]


@dataclass
class _Graded:
    entries: list[PollutantIndexPublic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    beyond: list[tuple[str, aqi.BeyondIndex]] = field(default_factory=list)


def _in_unit(series: Series, unit: str, molar_volume_l: float) -> list[float | None]:
    """The hours in ``unit``; negative means (sensor noise around zero) count as 0."""
    have = series.unit or unit
    out: list[float | None] = []
    for v in series.hours:
        if v is None:
            out.append(None)
            continue
        if have != unit:
            v = aqi.convert(series.metric, v, have, unit, molar_volume_l)
        out.append(max(v, 0.0))
    return out


def _mean_of_last(hours: Sequence[float | None], n: int, need: int) -> float:
    window = [v for v in hours[-n:] if v is not None]
    if len(window) < need:
        raise aqi.InsufficientData(f"the {n}-hour mean needs {need} of the last {n} hours, "
                                   f"found {len(window)}")
    return sum(window) / len(window)


def _last_hour(hours: Sequence[float | None]) -> float:
    if not hours or hours[-1] is None:
        raise aqi.InsufficientData("no mean for the last complete hour")
    return hours[-1]


Grader = Callable[[str, float], aqi.AirIndex]


def _epa_windows(metric: str, hours: list[float | None]) -> list[tuple[str, str, float]]:
    """(graded pollutant key, averaging, concentration) for US EPA."""
    if metric in ("pm2_5", "pm10"):
        return [(metric, "nowcast", aqi.nowcast(hours))]
    if metric == "co":
        return [("co", "8h", _mean_of_last(hours, EIGHT_HOURS, EIGHT_HOURS_MIN_PRESENT))]
    if metric == "no2":
        return [("no2", "1h", _last_hour(hours))]
    # Ozone: the 8-hour mean, and the 1-hour mean as well when it reaches 0.125 ppm.
    found: list[tuple[str, str, float]] = []
    eight = _mean_of_last(hours, EIGHT_HOURS, EIGHT_HOURS_MIN_PRESENT)
    if eight <= 0.2:  # above, the 8-hour table ends: the 1-hour value grades it
        found.append(("o3_8h", "8h", eight))
    if hours and hours[-1] is not None and hours[-1] >= O3_1H_FROM_PPM:
        found.append(("o3_1h", "1h", hours[-1]))
    return found


def _caqi_windows(metric: str, hours: list[float | None]) -> list[tuple[str, str, float]]:
    """(graded pollutant key, averaging, concentration) for the hourly CAQI."""
    if metric == "co":
        return [("co", "8h", _mean_of_last(hours, EIGHT_HOURS, EIGHT_HOURS_MIN_PRESENT))]
    return [(metric, "1h", _last_hour(hours))]


def _grade(standard: Standard, series: Series, out: _Graded) -> None:
    what = f"{series.metric} ({series.sensor})"
    try:
        if standard == "us-epa":
            unit = aqi.EPA_POLLUTANTS["o3_8h" if series.metric == "o3" else series.metric]
            windows = _epa_windows(
                series.metric, _in_unit(series, unit, aqi.MOLAR_VOLUME_25C_L))
            grade: Grader = aqi.us_epa
        else:
            windows = _caqi_windows(
                series.metric, _in_unit(series, "ug/m3", aqi.MOLAR_VOLUME_20C_L))
            grade = lambda p, c: aqi.eu_caqi(p, c, "hourly")  # noqa: E731
        for key, averaging, concentration in windows:
            try:
                graded = grade(key, concentration)
            except aqi.BeyondIndex as exc:
                out.beyond.append((series.metric, exc))
                out.notes.append(f"{what}: {exc}")
                continue
            out.entries.append(PollutantIndexPublic(
                pollutant=series.metric, sensor=series.sensor,
                concentration=graded.concentration, unit=graded.unit, averaging=averaging,
                index=graded.index, category=graded.category, label=graded.label,
                colour=graded.colour))
    except ValueError as exc:  # InsufficientData, an unconvertible unit, ozone hand-over
        out.notes.append(f"{what}: {exc}")


def device_index(standard: Standard, site: str, device: str,
                 series: Sequence[Series]) -> DeviceIndexPublic:
    """The device's index: the highest of its pollutants'; null with a note when no
    pollutant has enough recent data, or when one is beyond the top of the scale."""
    graded = _Graded()
    for s in series:
        _grade(standard, s, graded)
    if not series:
        graded.notes.append(f"no {', '.join(METRICS[standard])} readings in the last "
                            f"{HOURS_NEEDED} complete hours")
    note = "; ".join(graded.notes) or None
    if graded.beyond:  # above the scale: the top class, but no number to give
        metric, exc = graded.beyond[0]
        return DeviceIndexPublic(site=site, device=device, index=None, category=exc.category,
                                 label=exc.label, colour=exc.colour, pollutant=metric,
                                 pollutants=graded.entries, note=note)
    if not graded.entries:
        return DeviceIndexPublic(site=site, device=device, index=None, category=None,
                                 label=None, colour=None, pollutant=None, pollutants=[],
                                 note=note or "no pollutant with enough recent data")
    top = max(graded.entries, key=lambda e: e.index)  # first of equals: PM before gases
    return DeviceIndexPublic(site=site, device=device, index=top.index,
                             category=top.category, label=top.label, colour=top.colour,
                             pollutant=top.pollutant, pollutants=graded.entries, note=note)
