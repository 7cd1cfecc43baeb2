"""InfluxDB stopped for a minute under steady load: the hub stops acking, the broker holds
the backlog in the hub's persistent session, health says what is wrong and since when, and
once InfluxDB is back every reading arrives exactly once."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Edge, Hub, assert_gap_free, wait_until
from tests.servers import InfluxDB1, Mosquitto

OUTAGE_S = 60.0
DATABASE = "fabcity"


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[InfluxDB1]:
    server = InfluxDB1(tmp_path / "influxdb").start()
    yield server
    server.stop()


def _sequence(influxd: InfluxDB1) -> list[float]:
    answer = influxd.query("""SELECT "value" FROM "sequence" WHERE "device" = 'pi-1'""",
                           DATABASE)
    series = answer["results"][0].get("series", [])  # type: ignore[index]
    return [row[1] for row in series[0]["values"]] if series else []


def test_influxdb_down_for_a_minute_loses_nothing_and_doubles_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxd: InfluxDB1, make_edge  # type: ignore[no-untyped-def]
) -> None:
    hub = Hub(tmp_path, mosquitto.url, storage=(
        f'backend = "influxdb1"\nurl = "{influxd.url}"\ndatabase = "{DATABASE}"\n')).start()
    try:
        edge: Edge = make_edge(interval_s=0.01)
        edge.process.start()
        wait_until(lambda: len(_sequence(influxd)) > 200, what="readings flowing into InfluxDB")

        influxd.stop()
        stopped = time.monotonic()
        wait_until(lambda: hub.get("/api/v1/health")["storage"]["since"] is not None, 15,
                   what="health to report the outage and since when")
        health = hub.get("/api/v1/health")
        assert health["status"] == "degraded"
        assert health["storage"]["status"].startswith("unavailable: InfluxDB"), health
        assert "fabcity_storage_available 0.0" in hub.metrics()
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))

        influxd.start()
        wait_until(lambda: hub.get("/api/v1/health")["status"] == "ok", 60,
                   what="health to recover")
        assert edge.process.terminate() == 0, edge.process.output()[-2000:]
        assert edge.buffered() == [], "a clean stop leaves only unacknowledged readings"
        settled: list[int] = []

        def drained() -> bool:  # the count stopped growing: the broker's backlog is stored
            settled.append(len(_sequence(influxd)))
            time.sleep(1.0)
            return len(settled) > 2 and settled[-1] == settled[-2] == settled[-3]

        wait_until(drained, 120, what="the backlog to drain")
        values = _sequence(influxd)
        assert_gap_free(values)
        assert len(values) > OUTAGE_S * 50, "the edge kept producing during the outage"
        assert "retrying" not in hub.get("/api/v1/health")["storage"]["status"]
    finally:
        hub.process.terminate()
    assert "storage unavailable" in hub.process.output()
