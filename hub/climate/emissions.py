"""Greenhouse-gas emissions of a site from its meters, by GPC scope, per period.

- Scope 2 (GPC ``I.x.2``): grid electricity, from ``energy`` counters (the hourly ``increase``
  aggregate: resets restart from zero, the step across a gap lands where the next reading
  does), or, for a device that reports only ``power``, its trapezoidal integral; times the
  site's grid factor for the year.
- Scope 3 (``I.x.3``): transmission and distribution losses, the scope-2 kWh times
  ``grid_loss_factor``, times the same grid factor.
- Scope 1 (``I.x.1``): fuel burnt on site, from ``gas_volume`` (m3) and ``fuel_energy`` (kWh)
  counters times their factors.

Coverage is the share of a period with data: hours holding a reading for counters, time
between readings no further apart than ``max_gap_s`` for power. A scope's coverage is that of
its least-covered series. Nothing is estimated for missing time.
"""

import datetime as dt
from dataclasses import dataclass, field

from hub.climate.integrate import integrate_power
from hub.climate.series import CounterSeries, Period, SeriesName, counters, periods, raw_points
from hub.config import SiteConfig
from hub.storage.base import Storage

__all__ = ["EmissionRow", "PeriodEmissions", "SeriesFigure", "SiteEmissions",
           "site_emissions", "year_of"]

#: Scope-1 meters: metric -> (fuel, unit of the activity, site key of its factor).
FUEL_METERS = {"gas_volume": ("natural gas", "m3", "gas_kgco2e_per_m3"),
               "fuel_energy": ("fuel", "kWh", "fuel_kgco2e_per_kwh")}
_TO_KWH = {"Wh": 0.001, "kWh": 1.0}


def year_of(ms: int) -> int:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).year


@dataclass(slots=True)
class SeriesFigure:
    """One meter's share of a row."""

    device: str
    sensor: str
    metric: str
    method: str  # "counter" (increase of a counter) or "power" (trapezoid of power)
    amount: float
    unit: str
    coverage: float


@dataclass(slots=True)
class EmissionRow:
    """One GPC line of one period: activity x factor = tCO2e."""

    scope: int
    gpc_ref: str | None
    source: str
    activity: float
    unit: str
    factor: float | None
    factor_unit: str
    coverage: float | None
    series: list[SeriesFigure] = field(default_factory=list)

    @property
    def tco2e(self) -> float | None:
        return None if self.factor is None else self.activity * self.factor / 1000


@dataclass(slots=True)
class PeriodEmissions:
    period: Period
    rows: list[EmissionRow]


@dataclass(slots=True)
class SiteEmissions:
    site: SiteConfig
    periods: list[PeriodEmissions]


@dataclass(slots=True)
class _Meter:
    """A series' activity and coverage per period."""

    name: SeriesName
    metric: str
    method: str
    unit: str
    figures: list[tuple[float, float]]  # (amount, coverage) per period


def _gpc(site: SiteConfig, scope: int) -> str | None:
    return f"{site.gpc_sector}.{scope}" if site.gpc_sector else None


def _counter_meters(found: dict[SeriesName, CounterSeries], metric: str, unit: str,
                    bounds: list[Period]) -> list[_Meter]:
    """Counters converted to ``unit`` (kWh from Wh); series in another unit are skipped."""
    meters = []
    for name, series in sorted(found.items()):
        scale = _TO_KWH.get(series.unit or "") if unit == "kWh" else (
            1.0 if series.unit == unit else None)
        if scale is None:
            continue
        figures = [(rise * scale, cover) for rise, cover in series.per_period(bounds)]
        meters.append(_Meter(name, metric, "counter", unit, figures))
    return meters


def _power_meters(storage: Storage, site: SiteConfig, start_ms: int, end_ms: int,
                  bounds: list[Period]) -> list[_Meter]:
    """Series with power but no energy counter, integrated (kWh)."""
    newest = storage.latest(site=site.id)  # one look-up for both metrics
    with_energy = {(r.device, r.sensor) for r in newest if r.metric == "energy"}
    gap_ms = int(site.max_gap_s * 1000)
    meters = []
    for r in newest:
        if r.metric != "power":
            continue
        name = (r.device, r.sensor)
        if name in with_energy or not site.counts_electricity(*name):
            continue
        points = raw_points(storage, site.id, r.device, r.sensor, "power",
                            start_ms - gap_ms, end_ms + gap_ms)
        figures = [(wh / 1000, covered / max(1, p.end_ms - p.start_ms))
                   for (wh, covered), p in zip(integrate_power(points, bounds, gap_ms), bounds,
                                               strict=True)]
        meters.append(_Meter(name, "power", "power", "kWh", figures))
    return meters


def _row(scope: int, site: SiteConfig, source: str, unit: str, factor: float | None,
         meters: list[_Meter], i: int) -> EmissionRow:
    series = [SeriesFigure(m.name[0], m.name[1], m.metric, m.method, m.figures[i][0], unit,
                           m.figures[i][1]) for m in meters]
    return EmissionRow(
        scope=scope, gpc_ref=_gpc(site, scope), source=source,
        activity=sum(s.amount for s in series), unit=unit, factor=factor,
        factor_unit=f"kgCO2e/{unit}",
        coverage=min((s.coverage for s in series), default=None), series=series)


def site_emissions(storage: Storage, site: SiteConfig, start_ms: int, end_ms: int,
                   period: str) -> SiteEmissions:
    """Every scope's rows of ``site`` per ``period`` (``day``, ``month`` or ``all``)."""
    bounds = periods(start_ms, end_ms, period)
    energy = {name: s for name, s in counters(storage, site.id, "energy", start_ms,
                                               end_ms).items()
              if site.counts_electricity(*name)}
    electricity = (_counter_meters(energy, "energy", "kWh", bounds)
                   + _power_meters(storage, site, start_ms, end_ms, bounds))
    fuels = []
    for metric, (fuel, unit, key) in FUEL_METERS.items():
        found = counters(storage, site.id, metric, start_ms, end_ms)
        meters = _counter_meters(found, metric, unit, bounds)
        if meters:
            fuels.append((fuel, unit, getattr(site, key), meters))
    out = []
    for i, p in enumerate(bounds):
        rows = []
        for fuel, unit, factor, meters in fuels:
            rows.append(_row(1, site, f"{fuel} burnt on site", unit, factor, meters, i))
        if electricity:
            grid = _row(2, site, "grid electricity", "kWh", site.grid_factor(year_of(p.start_ms)),
                        electricity, i)
            rows.append(grid)
            if site.grid_loss_factor is not None:
                rows.append(EmissionRow(
                    scope=3, gpc_ref=_gpc(site, 3), source="transmission and distribution losses",
                    activity=grid.activity * site.grid_loss_factor, unit="kWh",
                    factor=grid.factor, factor_unit=grid.factor_unit, coverage=grid.coverage))
        out.append(PeriodEmissions(p, rows))
    return SiteEmissions(site, out)
