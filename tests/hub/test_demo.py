"""``fabcity demo``: its history, its agents' configuration and its declared sites."""

import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import load_edge_settings
from fabcity.reading import Reading
from hub.config import HubSettings
from hub.demo import DEMO_DEVICES, DEMO_SITES, demo_sensors, edge_settings, episodes, to_toml
from hub.demo_history import prefill
from hub.storage.base import MINUTE_MS, ReadingQuery
from hub.storage.rollup import RollupState
from hub.storage.sqlite import SqliteStorage

NOW_S = 1_796_000_000.0  # 2026-11-30
DAY_MS = 86_400_000
N_SERIES = 30  # laser bay 3+3+6, printers 3+3, two poles 6+6


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "hub.db", synchronous="normal")
    yield store
    store.close()


def _agents(now_s: float = NOW_S) -> list[tuple[str, str, list]]:  # type: ignore[type-arg]
    starts = episodes(now_s)
    return [(d.site, d.device, demo_sensors(d, 2.0, starts)) for d in DEMO_DEVICES]


def _all(storage: SqliteStorage) -> list[Reading]:
    return storage.raw(ReadingQuery(0, 2**62, limit=10**7))


def test_prefill_writes_seven_days_a_minute_apart(storage: SqliteStorage) -> None:
    out = io.StringIO()
    new = prefill(storage, _agents(), NOW_S, out=out)
    assert new == N_SERIES * 7 * 1440
    end_ms = int(NOW_S) // 60 * 60_000
    pm = storage.raw(ReadingQuery(end_ms - 7 * DAY_MS, end_ms, site="street-pujades",
                                  device="pole-01", metric="pm2_5", limit=10**6))
    assert len(pm) == 7 * 1440
    assert pm[0].ts_ms == end_ms - 7 * DAY_MS and pm[-1].ts_ms == end_ms - MINUTE_MS
    assert "7 days" in out.getvalue() and f"{new:,} new readings" in out.getvalue()


def test_a_second_start_adds_and_rewrites_nothing(storage: SqliteStorage) -> None:
    prefill(storage, _agents(), NOW_S, days=1, out=None)
    before = _all(storage)
    assert prefill(storage, _agents(), NOW_S, days=1, out=None) == 0
    assert _all(storage) == before


def test_a_later_start_fills_only_after_the_newest_reading(storage: SqliteStorage) -> None:
    prefill(storage, _agents(), NOW_S, days=1, out=None)
    live_ms = int(NOW_S) * 1000 + 2_000  # a live reading between two history minutes
    storage.write([Reading("street-pujades", "pole-01", "air", "pm2_5", 12.0, live_ms, "ug/m3")])
    later = NOW_S + 3600
    new = prefill(storage, _agents(later), later, days=1, out=None)
    assert new == N_SERIES * 60 - 6  # one minute of pole-01 is already covered
    pm = storage.raw(ReadingQuery(int(NOW_S) * 1000, int(later) * 1000, device="pole-01",
                                  metric="pm2_5"))
    assert len(pm) == 60 and pm[0].ts_ms == live_ms  # still one a minute, no twin


def test_energy_counters_of_the_history_rise_and_differ(storage: SqliteStorage) -> None:
    prefill(storage, _agents(), NOW_S, days=2, out=None)
    finals = []
    for device, sensor in (("pi-laser", "laser"), ("pi-laser", "extractor"),
                           ("pi-printers", "printer_1"), ("pi-printers", "printer_2")):
        energy = [r.value for r in storage.raw(ReadingQuery(
            0, 2**62, device=device, sensor=sensor, metric="energy", limit=10**6))]
        assert all(b >= a for a, b in itertools.pairwise(energy))
        assert energy[-1] > energy[0]
        finals.append(energy[-1])
    assert len(set(finals)) == 4


def test_history_has_a_pollution_episode_above_35_5(storage: SqliteStorage) -> None:
    prefill(storage, _agents(), NOW_S, days=4, out=None)  # the episode is 3 days back
    hourly = storage.query(ReadingQuery(0, 2**62, device="pole-01", metric="pm2_5",
                                        every_ms=3_600_000))
    assert sum(r.value >= 35.5 for r in hourly) >= 2


def test_prefill_marks_its_minutes_for_rollups_already_past(tmp_path: Path,
                                                            storage: SqliteStorage) -> None:
    state = RollupState(tmp_path / "state.db", storage.describe())
    state.set_watermark(MINUTE_MS, int(NOW_S) * 1000)
    prefill(storage, _agents(), NOW_S, rollups=state, days=1, out=None)
    assert len(state.dirty()) == 1440
    state.close()


def test_edge_toml_is_written_from_the_edge_model_and_loads_back(tmp_path: Path) -> None:
    starts = episodes(NOW_S)
    for device in DEMO_DEVICES:
        settings = edge_settings(device, "mqtt://127.0.0.1:1883", tmp_path,
                                 demo_sensors(device, 0.5, starts))
        path = tmp_path / f"{device.device}.toml"
        path.write_text(to_toml(settings))
        assert load_edge_settings(path) == settings


def test_the_street_poles_carry_a_past_and_a_live_episode() -> None:
    pole = next(d for d in DEMO_DEVICES if d.device == "pole-01")
    options = demo_sensors(pole, 2.0, episodes(NOW_S))[0].options
    past, live = options["episodes"]
    assert past < live
    assert options["episode_hours"] > 1


def test_demo_sites_have_human_names_and_cover_every_device() -> None:
    settings = HubSettings(sites=[s.model_dump() for s in DEMO_SITES])  # type: ignore[misc]
    names = {s.id: s.name for s in settings.sites}
    assert names["fablab-poblenou"] == "Fab Lab Poblenou"
    assert {d.site for d in DEMO_DEVICES} == set(names)
    assert all(s.lat is not None and s.description and s.licence for s in settings.sites)
