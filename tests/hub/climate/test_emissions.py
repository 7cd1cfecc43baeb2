"""Emissions from meters, checked against figures computed by hand."""

import pytest

from hub.climate.emissions import site_emissions
from hub.climate.series import year_range
from hub.config import SiteConfig
from hub.storage.base import Storage
from tests.hub.climate.conftest import at, put

SITE = SiteConfig(id="fablab-bcn", name="Fab Lab", gpc_sector="I.2", grid_kgco2e_per_kwh=0.25,
                  grid_loss_factor=0.06, gas_kgco2e_per_m3=2.0)


def _day(storage: Storage, site: SiteConfig, day: str, period: str = "all"):  # type: ignore[no-untyped-def]
    return site_emissions(storage, site, at(f"{day}T00:00"), at(f"{day}T00:00") + 86_400_000,
                          period).periods


def test_counter_reset_restarts_from_zero(db: Storage) -> None:
    # 1000 -> 1500 (+500), -> 200 (reset: +200), -> 400 (+200): 900 Wh
    put(db, "energy", [("2026-03-01T00:00", 1000), ("2026-03-01T01:00", 1500),
                       ("2026-03-01T02:00", 200), ("2026-03-01T03:00", 400)])
    rows = {r.scope: r for r in _day(db, SITE, "2026-03-01")[0].rows}
    assert rows[2].activity == pytest.approx(0.9)
    assert rows[2].gpc_ref == "I.2.2"
    assert rows[2].tco2e == pytest.approx(0.9 * 0.25 / 1000)
    assert rows[2].coverage == pytest.approx(4 / 24)
    assert rows[3].gpc_ref == "I.2.3"
    assert rows[3].activity == pytest.approx(0.9 * 0.06)
    assert rows[3].tco2e == pytest.approx(0.9 * 0.06 * 0.25 / 1000)


def test_step_across_a_gap_lands_where_the_next_reading_does(db: Storage) -> None:
    put(db, "energy", [("2026-03-01T10:00", 0), ("2026-03-01T11:00", 100),
                       ("2026-03-01T17:00", 700)])
    hourly = site_emissions(db, SITE, at("2026-03-01T00:00"), at("2026-03-02T00:00"), "all")
    row = hourly.periods[0].rows[0]
    assert row.activity == pytest.approx(0.7)  # the whole rise, nothing invented
    assert row.coverage == pytest.approx(3 / 24)  # hours 10, 11 and 17 hold readings
    # over the two halves of the day: the 600 Wh step lands at 17:00
    halves = site_emissions(db, SITE, at("2026-03-01T00:00"), at("2026-03-01T12:00"), "all")
    assert halves.periods[0].rows[0].activity == pytest.approx(0.1)
    later = site_emissions(db, SITE, at("2026-03-01T12:00"), at("2026-03-02T00:00"), "all")
    assert later.periods[0].rows[0].activity == pytest.approx(0.6)


def test_year_boundary_step_counts_in_the_new_year_at_its_factor(db: Storage) -> None:
    site = SITE.model_copy(update={"grid_kgco2e_per_kwh": {"2026": 0.3, "2027": 0.2}})
    put(db, "energy", [("2026-12-31T22:00", 0), ("2026-12-31T23:50", 1000),
                       ("2027-01-01T00:10", 1500), ("2027-01-01T05:00", 1600)])
    old = site_emissions(db, site, *year_range(2026), "month").periods
    new = site_emissions(db, site, *year_range(2027), "month").periods
    assert len(old) == len(new) == 12
    assert old[11].rows[0].activity == pytest.approx(1.0)
    assert old[11].rows[0].factor == 0.3
    assert new[0].rows[0].activity == pytest.approx(0.6)  # 500 across midnight, then 100
    assert new[0].rows[0].factor == 0.2
    assert new[0].rows[0].tco2e == pytest.approx(0.6 * 0.2 / 1000)


def test_step_after_a_gap_longer_than_the_lookback_is_kept(db: Storage) -> None:
    put(db, "energy", [("2026-11-01T00:00", 1000), ("2027-01-20T00:00", 4000)])
    new = site_emissions(db, SITE, *year_range(2027), "month").periods
    assert new[0].rows[0].activity == pytest.approx(3.0)
    assert new[0].rows[0].coverage == pytest.approx(1 / (31 * 24))


def test_leap_day_is_a_day_of_its_own(db: Storage) -> None:
    put(db, "energy", [("2028-02-28T23:00", 0), ("2028-02-29T12:00", 2000),
                       ("2028-03-01T00:30", 2500)])
    days = site_emissions(db, SITE, at("2028-02-28T00:00"), at("2028-03-02T00:00"), "day")
    assert [p.rows[0].activity for p in days.periods] == pytest.approx([0.0, 2.0, 0.5])
    months = site_emissions(db, SITE, *year_range(2028), "month").periods
    assert months[1].period.hours == 29 * 24
    assert months[1].rows[0].coverage == pytest.approx(2 / (29 * 24))


def test_power_only_series_is_integrated_by_trapezoids(db: Storage) -> None:
    # 0 -> 600 W over 10 min: 50 Wh; 600 W for 10 min: 100 Wh; 600 -> 0 W: 50 Wh.
    # 14:00 is 90 min after 12:30, more than max_gap_s (900 s): not bridged.
    put(db, "power", [("2026-03-01T12:00", 0), ("2026-03-01T12:10", 600),
                      ("2026-03-01T12:20", 600), ("2026-03-01T12:30", 0),
                      ("2026-03-01T14:00", 1000)], device="pi-cnc", sensor="spindle")
    row = _day(db, SITE, "2026-03-01")[0].rows[0]
    assert row.activity == pytest.approx(0.2)
    assert row.series[0].method == "power"
    assert row.coverage == pytest.approx(30 / 1440)


def test_power_is_ignored_where_an_energy_counter_exists(db: Storage) -> None:
    put(db, "power", [("2026-03-01T12:00", 500), ("2026-03-01T12:10", 500)])
    put(db, "energy", [("2026-03-01T12:00", 0), ("2026-03-01T12:10", 90)])
    row = _day(db, SITE, "2026-03-01")[0].rows[0]
    assert [s.method for s in row.series] == ["counter"]
    assert row.activity == pytest.approx(0.09)


def test_gas_meter_is_scope_one(db: Storage) -> None:
    put(db, "gas_volume", [("2026-03-01T08:00", 10), ("2026-03-01T09:00", 13.5)],
        device="pi-boiler", sensor="gas")
    row = _day(db, SITE, "2026-03-01")[0].rows[0]
    assert (row.scope, row.gpc_ref, row.unit) == (1, "I.2.1", "m3")
    assert row.tco2e == pytest.approx(3.5 * 2.0 / 1000)


def test_electricity_meters_select_the_series_that_count(db: Storage) -> None:
    put(db, "energy", [("2026-03-01T00:00", 0), ("2026-03-01T01:00", 1000)], device="pi-main")
    put(db, "energy", [("2026-03-01T00:00", 0), ("2026-03-01T01:00", 300)])
    site = SITE.model_copy(update={"electricity_meters": ["pi-main"]})
    assert _day(db, site, "2026-03-01")[0].rows[0].activity == pytest.approx(1.0)
    assert _day(db, SITE, "2026-03-01")[0].rows[0].activity == pytest.approx(1.3)
