"""Machine use per day: hours running and idle, starts, kWh (figures computed by hand)."""

import pytest

from hub.climate.machines import machine_reports
from hub.config import MachineConfig, SiteConfig
from hub.storage.base import Storage
from tests.hub.climate.conftest import at, put

SITE = SiteConfig(id="fablab-bcn", name="Fab Lab", max_gap_s=3600,
                  machines=[MachineConfig(device="pi-cnc", running_w=50, name="CNC")])


def _reports(db: Storage, start: str, end: str, period: str = "day"):  # type: ignore[no-untyped-def]
    return machine_reports(db, lambda s: SITE if s == SITE.id else None, None, at(start),
                           at(end), period)


def test_run_across_midnight_splits_between_days(db: Storage) -> None:
    put(db, "state", [("2026-03-01T22:00", 0), ("2026-03-01T22:30", 1),
                      ("2026-03-01T23:00", 1), ("2026-03-01T23:30", 1),
                      ("2026-03-02T00:00", 1), ("2026-03-02T00:30", 1),
                      ("2026-03-02T01:00", 0), ("2026-03-02T01:30", 0)], sensor="laser")
    [laser] = _reports(db, "2026-03-01T00:00", "2026-03-03T00:00")
    first, second = laser.periods
    assert laser.running_source == "state"
    assert (first.running_h, first.idle_h, first.starts) == pytest.approx((1.5, 0.5, 1))
    assert (second.running_h, second.idle_h, second.starts) == pytest.approx((1.0, 0.5, 0))
    assert first.coverage == pytest.approx(2 / 24)


def test_power_above_threshold_means_running_and_energy_is_integrated(db: Storage) -> None:
    # 10 W (idle) 23:40, 100 W 23:50 (start), 100 W 00:10, 10 W 00:20 (stop)
    put(db, "power", [("2026-03-01T23:40", 10), ("2026-03-01T23:50", 100),
                      ("2026-03-02T00:10", 100), ("2026-03-02T00:20", 10)], device="pi-cnc",
        sensor="spindle")
    [cnc] = _reports(db, "2026-03-01T00:00", "2026-03-03T00:00")
    assert cnc.name == "CNC"
    assert cnc.running_source == "power > 50 W"
    assert cnc.kwh_source == "power"
    first, second = cnc.periods
    # day 1: idle 23:40-23:50, running 23:50-24:00; day 2: running 00:00-00:10, 00:10-00:20
    assert (first.running_h, first.idle_h, first.starts) == pytest.approx((1 / 6, 1 / 6, 1))
    assert (second.running_h, second.idle_h, second.starts) == pytest.approx((1 / 3, 0, 0))
    # trapezoids: (10+100)/2 W x 1/6 h = 9.1667 Wh; 100 W x 1/6 h = 16.667 Wh on day 1,
    # 100 W x 1/6 h + (100+10)/2 W x 1/6 h = 25.833 Wh on day 2
    assert first.kwh == pytest.approx((55 / 6 + 100 / 6) / 1000)
    assert second.kwh == pytest.approx((100 / 6 + 55 / 6) / 1000)


def test_energy_counter_wins_and_unknown_running_stays_null(db: Storage) -> None:
    put(db, "energy", [("2026-03-01T10:00", 100), ("2026-03-01T11:00", 400),
                       ("2026-03-01T12:00", 50)], device="pi-printer", sensor="plug")
    put(db, "power", [("2026-03-01T10:00", 300), ("2026-03-01T11:00", 300)],
        device="pi-printer", sensor="plug")
    [printer] = _reports(db, "2026-03-01T00:00", "2026-04-01T00:00", "month")
    assert printer.kwh_source == "energy"
    assert printer.periods[0].kwh == pytest.approx(0.35)  # +300, then a reset to 50
    assert printer.running_source is None
    assert printer.periods[0].running_h is None and printer.periods[0].starts is None


def test_counter_for_kwh_and_power_for_running_both_count(db: Storage) -> None:
    put(db, "energy", [("2026-03-01T10:00", 0), ("2026-03-01T10:30", 40)], device="pi-cnc",
        sensor="spindle")
    put(db, "power", [("2026-03-01T10:00", 100), ("2026-03-01T10:30", 10)], device="pi-cnc",
        sensor="spindle")
    [cnc] = _reports(db, "2026-03-01T00:00", "2026-03-02T00:00")
    assert (cnc.kwh_source, cnc.running_source) == ("energy", "power > 50 W")
    assert cnc.periods[0].kwh == pytest.approx(0.04)
    assert (cnc.periods[0].running_h, cnc.periods[0].starts) == pytest.approx((0.5, 0))
