"""Every InfluxQL query of the dashboards, run as Grafana would send it, on a real InfluxDB 1.6
holding what the hub writes (raw readings through the influxdb1 back-end, rollups from the
hub's own rollup worker); key panels give the numbers the hub's API gives."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fabcity.reading import Reading
from hub.storage.base import HOUR_MS, ReadingQuery
from hub.storage.influxdb1 import InfluxDB1Storage
from hub.storage.rollup import RollupState, RollupWorker
from tests.dashboards.grafana import dashboards, interpolate, target_uid, targets
from tests.hub.storage.backends import open_influxdb1
from tests.servers import InfluxDB1

STEP_MS = 30_000
HOURS = 3
ENERGY_STEP_WH = 5.0
RUNNING_MINUTES = 45  # of each hour: utilisation 75 %


def readings(start_ms: int, now_ms: int) -> list[Reading]:
    """Three whole hours of an air station and a laser cutter, and one fresh reading each."""
    out = []
    for i, ts in enumerate(range(start_ms, start_ms + HOURS * HOUR_MS, STEP_MS)):
        out += [Reading("lab", "air-1", "sds011", "pm2_5", float(i % 50), ts, "ug/m3"),
                Reading("lab", "air-1", "sds011", "pm10", float(i % 80), ts, "ug/m3"),
                Reading("lab", "air-1", "no2", "no2", 20.0 + i % 7, ts, "ug/m3"),
                Reading("lab", "laser", "meter", "power", float(i * 10 % 3000), ts, "W"),
                Reading("lab", "laser", "meter", "energy", 1000 + i * ENERGY_STEP_WH, ts, "Wh"),
                Reading("lab", "laser", "relay", "state",
                        1.0 if (ts % HOUR_MS) < RUNNING_MINUTES * 60_000 else 0.0, ts, "bool")]
    fresh = now_ms - 60_000
    out += [Reading("lab", device, "env", "temperature", 21.0, fresh, "degC")
            for device in ("air-1", "laser")]
    return out


@pytest.fixture(scope="module")
def loaded(influxdb1: InfluxDB1, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[InfluxDB1Storage, int, int]]:
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms // HOUR_MS - HOURS - 1) * HOUR_MS
    storage = open_influxdb1(influxdb1, "grafana_dashboards")
    storage.write(readings(start_ms, now_ms))
    state = RollupState(Path(tmp_path_factory.mktemp("rollup")) / "state.db", "grafana")
    worker = RollupWorker(storage, state)
    for _ in range(HOURS + 3):  # each pass rolls up at most a day; hours follow minutes
        worker.run_once(now_ms)
    state.close()
    yield storage, start_ms, now_ms
    storage.close()


def run(server: InfluxDB1, database: str, query: str) -> list[dict[str, Any]]:
    answer: Any = server.query(query, database)
    (result,) = answer["results"]
    assert "error" not in result, f"{result['error']}: {query}"
    return list(result.get("series", []))


def influx_targets() -> list[tuple[str, str, str, str]]:
    """(dashboard, panel title, refId, query) of every InfluxQL target."""
    return [(name, panel["title"], target["refId"], target["query"])
            for name, dashboard in dashboards().items()
            for panel, target in targets(dashboard)
            if target_uid(panel, target) == "fabcity-influxdb"]


def grafana_query(query: str, start_ms: int, now_ms: int, interval: str = "1m") -> str:
    return interpolate(query, start_ms, now_ms, interval,
                       {"site": ".*", "device": ".*", "rollups": "fabcity"})


def find(dashboard: str, title: str, ref: str = "A") -> str:
    return next(q for d, t, r, q in influx_targets() if (d, t, r) == (dashboard, title, ref))


@pytest.mark.parametrize(("dashboard", "title", "ref", "query"), influx_targets(),
                         ids=lambda v: v if len(str(v)) < 40 else "")
def test_influxql_target_runs_and_finds_the_readings(
        influxdb1: InfluxDB1, loaded: tuple[InfluxDB1Storage, int, int],
        dashboard: str, title: str, ref: str, query: str) -> None:
    storage, start_ms, now_ms = loaded
    series = run(influxdb1, storage.database, grafana_query(query, start_ms, now_ms))
    assert series and any(row[1] is not None for s in series for row in s["values"]), (
        f"{dashboard} / {title} / {ref}: no data")


def test_variable_queries_list_sites_and_devices(
        influxdb1: InfluxDB1, loaded: tuple[InfluxDB1Storage, int, int]) -> None:
    storage, _, _ = loaded
    for dashboard in dashboards().values():
        found = {}
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"].replace("$site", ".*")
                found[variable["name"]] = {v[1] for s in run(influxdb1, storage.database, query)
                                           for v in s["values"]}
        assert found["site"] == {"lab"}
        assert found["device"] <= {"air-1", "laser"} and found["device"]


def test_pm25_trend_from_rollups_equals_the_hub_hourly_mean(
        influxdb1: InfluxDB1, loaded: tuple[InfluxDB1Storage, int, int]) -> None:
    storage, start_ms, now_ms = loaded
    query = grafana_query(find("air-quality.json", "PM2.5 per device"), start_ms, now_ms, "1h")
    (series,) = run(influxdb1, storage.database, query)
    grafana = {int(t): v for t, v in series["values"] if v is not None}
    hub = {r.ts_ms: r.value for r in storage.query(ReadingQuery(
        start_ms, now_ms, metric="pm2_5", every_ms=HOUR_MS, agg="mean"))}
    assert len(grafana) == HOURS
    assert grafana == pytest.approx(hub)


def test_energy_per_hour_counts_steps_inside_the_hour_and_raw_steps_add_up(
        influxdb1: InfluxDB1, loaded: tuple[InfluxDB1Storage, int, int]) -> None:
    storage, start_ms, now_ms = loaded
    (hourly,) = run(influxdb1, storage.database, grafana_query(
        find("fablab-machines.json", "Energy per hour"), start_ms, now_ms))
    grafana = {int(t): v for t, v in hourly["values"]}
    hub = {r.ts_ms: r.value for r in storage.query(ReadingQuery(
        start_ms, now_ms, metric="energy", every_ms=HOUR_MS, agg="increase"))}
    per_hour = HOUR_MS // STEP_MS
    # Each bar counts the steps inside its hour (resets handled); the API's hourly increase
    # also counts the step from the previous hour's last reading: one step more per hour.
    inside = (per_hour - 1) * ENERGY_STEP_WH
    assert list(grafana.values()) == pytest.approx([inside] * HOURS)
    assert [hub[t] for t in grafana] == pytest.approx(
        [inside] + [inside + ENERGY_STEP_WH] * (HOURS - 1))
    (raw,) = run(influxdb1, storage.database, grafana_query(
        find("fablab-machines.json", "Energy, recent (raw)"), start_ms, now_ms, "1h"))
    total = sum(v for _, v in raw["values"] if v is not None)
    assert total == pytest.approx((HOURS * per_hour - 1) * ENERGY_STEP_WH)


def test_utilisation_is_the_share_of_running_readings(
        influxdb1: InfluxDB1, loaded: tuple[InfluxDB1Storage, int, int]) -> None:
    storage, start_ms, now_ms = loaded
    (series,) = run(influxdb1, storage.database, grafana_query(
        find("fablab-machines.json", "Utilisation (range)"), start_ms, now_ms))
    assert series["values"][0][1] == pytest.approx(100 * RUNNING_MINUTES / 60)
