"""Counters read from bucket statistics (rollups and raw tails) agree with the rise computed
point by point from the raw readings, across a reset, a gap over a month boundary and a
series silent for longer than the look-back."""

from pathlib import Path

import pytest

from fabcity.reading import Reading
from hub.climate.emissions import site_emissions
from hub.climate.series import Period, periods
from hub.config import SiteConfig
from hub.storage.base import HOUR_MS, MINUTE_MS, ReadingQuery, Storage
from hub.storage.rollup import RollupState, RollupWorker
from tests.hub.climate.conftest import at

SITE = SiteConfig(id="fablab-bcn", name="Fab Lab", gpc_sector="I.2", grid_kgco2e_per_kwh=0.25)
START, END = at("2026-02-28T00:00"), at("2026-03-03T00:00")
Series = dict[tuple[str, str], list[tuple[int, float]]]


def _points() -> Series:
    """Three meters (Wh): a reset, a 30-hour gap across 1 March, a 9-day silence."""
    laser, value = [], 1000.0
    for ts in range(at("2026-02-27T20:00"), at("2026-02-28T10:00"), 10 * MINUTE_MS):
        value = 3.0 if ts == at("2026-02-28T04:30") else value + 7.0  # meter replaced
        laser.append((ts, value))
    for ts in range(at("2026-03-01T16:20"), at("2026-03-02T02:00"), 10 * MINUTE_MS):
        value += 11.5
        laser.append((ts, value))
    cnc = [(ts, 50.0 * n) for n, ts in enumerate(range(at("2026-02-26T00:00"), END, HOUR_MS))]
    boiler = [(at("2026-02-20T08:00"), 400.0), (at("2026-03-01T05:13"), 900.0),
              (at("2026-03-01T05:40"), 120.0), (at("2026-03-02T23:59"), 180.0)]
    return {("pi-laser", "meter"): laser, ("pi-cnc", "plug"): cnc, ("pi-boiler", "meter"): boiler}


def _by_hand(points: list[tuple[int, float]], bounds: list[Period]) -> list[float]:
    """kWh and coverage of each period in turn: each step (a drop restarts from zero) in
    the period of its later reading; coverage counts the hours holding a reading."""
    rise = [0.0] * len(bounds)
    hours: list[set[int]] = [set() for _ in bounds]
    previous: float | None = None
    for ts, value in points:
        inside = [i for i, p in enumerate(bounds) if p.start_ms <= ts < p.end_ms]
        if inside:
            hours[inside[0]].add(ts // HOUR_MS)
            if previous is not None:
                rise[inside[0]] += value - previous if value >= previous else value
        previous = value
    return [x for r, h, p in zip(rise, hours, bounds, strict=True)
            for x in (r / 1000, len(h) / p.hours)]


def _figures(storage: Storage, period: str) -> dict[tuple[str, str], list[float]]:
    answer = site_emissions(storage, SITE, START, END, period)
    out: dict[tuple[str, str], list[float]] = {}
    for p in answer.periods:
        for s in p.rows[0].series:
            out.setdefault((s.device, s.sensor), []).extend((s.amount, s.coverage))
    return out


def _store(storage: Storage, series: Series) -> None:
    storage.write([Reading(SITE.id, device, sensor, "energy", value, ts, "Wh")
                   for (device, sensor), points in series.items() for ts, value in points])


def test_counters_from_buckets_match_the_raw_points(db: Storage, tmp_path: Path) -> None:
    series = _points()
    _store(db, series)
    expected = {}
    for period in ("day", "month"):
        bounds = periods(START, END, period)
        expected[period] = {name: pytest.approx(_by_hand(points, bounds))
                            for name, points in series.items()}
        assert _figures(db, period) == expected[period]
    assert _by_hand(series[("pi-laser", "meter")], periods(START, END, "day"))[0] > 0
    # rollups up to 1 March 17:00 (inside the gap's last hours), raw points after
    state = RollupState(tmp_path / "state.db", db.describe())
    RollupWorker(db, state).run_once(at("2026-03-01T17:05"), max_windows=24 * 20)
    assert state.watermark(HOUR_MS) == at("2026-03-01T17:00")
    assert db.read_rollup(HOUR_MS, ReadingQuery(START, END))  # the hours do come from rollups
    db.rollups = state
    for period in ("day", "month"):
        assert _figures(db, period) == expected[period]
    state.close()
