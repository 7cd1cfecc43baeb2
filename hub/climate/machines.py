"""Machine use per day or month: kWh, hours running and idle, starts.

A machine is a (site, device, sensor) that reports ``power``, ``energy`` or ``state``. Its kWh
come from its ``energy`` counter when it has one (hourly ``increase``, as for emissions),
else from its integrated power. Running means ``state`` = 1 when it reports a state, else power
above the ``running_w`` of its ``[[sites.machines]]`` entry; without either, hours and starts
are unknown (``None``). A start is a transition from idle to running.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.climate.integrate import integrate_power, run_lengths
from hub.climate.series import CounterSeries, Period, SeriesName, counters, periods, raw_points
from hub.config import SiteConfig
from hub.storage.base import Storage

__all__ = ["MACHINE_METRICS", "MachinePeriod", "MachineReport", "machine_reports"]

MACHINE_METRICS = ("energy", "power", "state")
DEFAULT_MAX_GAP_S = SiteConfig.model_fields["max_gap_s"].default


@dataclass(slots=True)
class MachinePeriod:
    period: Period
    kwh: float | None
    running_h: float | None
    idle_h: float | None
    starts: int | None
    coverage: float | None  # share of the period whose running state is known


@dataclass(slots=True)
class MachineReport:
    site: str
    device: str
    sensor: str
    name: str | None
    kwh_source: str | None  # "energy", "power" or None
    running_source: str | None  # "state", "power > N W" or None
    periods: list[MachinePeriod] = field(default_factory=list)


def machine_reports(storage: Storage, site_config: Callable[[str], SiteConfig | None],
                    site: str | None, start_ms: int, end_ms: int, period: str,
                    ) -> list[MachineReport]:
    """Every machine of ``site`` (all sites when ``None``), ordered by site, device, sensor."""
    found: dict[tuple[str, str, str], set[str]] = {}
    for r in storage.latest(site=site):
        if r.metric in MACHINE_METRICS:
            found.setdefault((r.site, r.device, r.sensor), set()).add(r.metric)
    bounds = periods(start_ms, end_ms, period)
    energy_by_site: dict[str, dict[SeriesName, CounterSeries]] = {}
    out = []
    for (site_id, device, sensor), metrics in sorted(found.items()):
        config = site_config(site_id)
        if site_id not in energy_by_site:
            energy_by_site[site_id] = counters(storage, site_id, "energy", start_ms, end_ms)
        out.append(_report(storage, config, site_id, device, sensor, metrics, bounds,
                           energy_by_site[site_id].get((device, sensor))))
    return out


def _report(storage: Storage, config: SiteConfig | None, site: str, device: str, sensor: str,
            metrics: set[str], bounds: list[Period], energy: CounterSeries | None) -> MachineReport:
    entry = config.machine(device, sensor) if config else None
    gap_ms = int((config.max_gap_s if config else DEFAULT_MAX_GAP_S) * 1000)
    start_ms, end_ms = bounds[0].start_ms, bounds[-1].end_ms
    report = MachineReport(site, device, sensor, entry.name if entry else None, None, None)

    threshold = entry.running_w if entry is not None else None
    counted = energy is not None and energy.unit in ("Wh", "kWh")
    # Raw power only where it is used (a year of it is 525,600 points a minute-series): for
    # kWh without a counter, or for running without a state.
    power: list[tuple[int, float]] | None = None
    if "power" in metrics and (not counted or ("state" not in metrics
                                               and threshold is not None)):
        power = list(raw_points(storage, site, device, sensor, "power", start_ms - gap_ms,
                                end_ms + gap_ms))
    kwh: list[float | None] = [None] * len(bounds)
    if energy is not None and counted:
        scale = 0.001 if energy.unit == "Wh" else 1.0
        kwh = [rise * scale for rise, _ in energy.per_period(bounds)]
        report.kwh_source = "energy"
    elif power is not None:
        kwh = [wh / 1000 for wh, _ in integrate_power(power, bounds, gap_ms)]
        report.kwh_source = "power"

    runs = None
    if "state" in metrics:
        state = raw_points(storage, site, device, sensor, "state", start_ms - gap_ms,
                           end_ms + gap_ms)
        runs = run_lengths(state, bounds, gap_ms, lambda v: v >= 0.5)
        report.running_source = "state"
    elif power is not None and threshold is not None:
        limit = threshold
        runs = run_lengths(power, bounds, gap_ms, lambda v: v > limit)
        report.running_source = f"power > {limit:g} W"

    for i, p in enumerate(bounds):
        run = runs[i] if runs is not None else None
        report.periods.append(MachinePeriod(
            period=p, kwh=kwh[i],
            running_h=run.running_h if run else None, idle_h=run.idle_h if run else None,
            starts=run.starts if run else None,
            coverage=run.covered_ms / (p.end_ms - p.start_ms) if run else None))
    return report
