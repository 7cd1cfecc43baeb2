"""Sensor.Community forwarder against a local push API built from its documentation."""

import logging
import time
from typing import Any

import pytest

from fabcity.reading import Reading
from hub.forward.cursor import ForwardCursors
from hub.forward.http import retry_after_s
from hub.forward.sensor_community import SensorCommunityForwarder
from hub.metrics import HubMetrics
from hub.storage.sqlite import SqliteStorage
from tests.hub.forward.fakes import Scripted, sensor_community, serve

INTERVAL_MS = 145_000
T0 = 12_000_000 * INTERVAL_MS  # a window start (2025)


def forwarder(storage: SqliteStorage, cursors: ForwardCursors, url: str,
              **options: Any) -> SensorCommunityForwarder:
    opts = SensorCommunityForwarder.Options.model_validate(
        {"to": "sensor.community", "devices": ["street/pole-01"], "url": url,
         "node_id": "raspi-000000001234", "backfill_s": 10**9, "max_delay_s": 10**7,
         "settle_s": 0, **options})
    return SensorCommunityForwarder(opts, storage, cursors, HubMetrics())


def r(sensor: str, metric: str, value: float, ts_ms: int,
      flags: tuple[str, ...] = ()) -> Reading:
    return Reading("street", "pole-01", sensor, metric, value, ts_ms, None, flags)


def window(start: int) -> list[Reading]:
    return [r("sds", "pm2_5", 12.0, start + 1_000), r("sds", "pm2_5", 12.6, start + 60_000),
            r("sds", "pm10", 20.1, start + 1_000),
            r("bme", "temperature", 21.456, start + 2_000), r("bme", "humidity", 55.0, start),
            r("bme", "pressure", 1013.25, start + 2_000),
            r("bme", "co2", 400.0, start + 2_000, ())]  # not a Sensor.Community value


def counter(fw: SensorCommunityForwarder, name: str) -> float:
    value = fw.metrics.prometheus.get_sample_value(name, {"forwarder": fw.name})
    return value or 0.0


def test_one_request_per_sensor_type_with_the_documented_headers_body_and_units(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write(window(T0))
    with serve(sensor_community) as api:
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + INTERVAL_MS + 1)
    assert [(q.headers["x-pin"], q.headers["x-sensor"]) for q in api.requests] == [
        ("1", "raspi-000000001234"), ("11", "raspi-000000001234")]
    assert all(q.headers["content-type"] == "application/json" for q in api.requests)
    assert [q.body for q in api.requests] == [
        {"software_version": fw.options.software_version, "sensordatavalues": [
            {"value_type": "P1", "value": "20.10"}, {"value_type": "P2", "value": "12.30"}]},
        {"software_version": fw.options.software_version, "sensordatavalues": [
            {"value_type": "temperature", "value": "21.46"},
            {"value_type": "humidity", "value": "55.00"},
            {"value_type": "pressure", "value": "101325.00"}]},  # hPa -> Pa
    ]
    assert counter(fw, "fabcity_forwarded_readings_total") == 6  # co2 is not sent


def test_an_unfinished_interval_waits_and_a_finished_one_is_sent_once(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write(window(T0))
    with serve(sensor_community) as api:
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + INTERVAL_MS - 1)
        assert api.requests == []
        fw.run_once(T0 + INTERVAL_MS)
        fw.run_once(T0 + INTERVAL_MS + 5_000)
    assert len(api.requests) == 2


def test_readings_flagged_suspect_humidity_are_left_out_unless_configured(
        storage: SqliteStorage, cursors: ForwardCursors, tmp_path: Any) -> None:
    storage.write([r("sds", "pm2_5", 80.0, T0 + 1, ("suspect_humidity",)),
                   r("sds", "pm2_5", 10.0, T0 + 2), r("sds", "pm10", 95.0, T0 + 1,
                                                      ("suspect_humidity",))])
    with serve(sensor_community) as api:
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + INTERVAL_MS)
        relaxed = forwarder(storage, cursors, api.url, name="relaxed",
                            send_flags=["suspect_humidity"])
        relaxed.run_once(T0 + INTERVAL_MS)
    assert api.requests[0].body["sensordatavalues"] == [{"value_type": "P2", "value": "10.00"}]
    assert fw.metrics.prometheus.get_sample_value(
        "fabcity_forward_skipped_readings_total",
        {"forwarder": fw.name, "reason": "flagged"}) == 2
    assert api.requests[1].body["sensordatavalues"] == [
        {"value_type": "P1", "value": "95.00"}, {"value_type": "P2", "value": "45.00"}]


def test_a_500_then_201_is_retried_and_nothing_is_lost_or_doubled(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write([r("sds", "pm10", 20.0, T0 + 1), r("sds", "pm10", 30.0, T0 + INTERVAL_MS)])
    with serve(sensor_community) as api:
        api.script = [Scripted(500, body="oops"), Scripted(503)]
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + 2 * INTERVAL_MS)
        fw.run_once(T0 + 2 * INTERVAL_MS + 1)  # nothing left to send
    values = [q.body["sensordatavalues"][0]["value"] for q in api.requests]
    assert values == ["20.00", "20.00", "20.00", "30.00"]  # two failures, then once each
    assert counter(fw, "fabcity_forward_retried_readings_total") == 2
    assert counter(fw, "fabcity_forwarded_readings_total") == 2


def test_a_429_waits_for_retry_after(storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write([r("sds", "pm10", 20.0, T0 + 1)])
    with serve(sensor_community) as api:
        api.script = [Scripted(429, {"Retry-After": "1"}, "slow down")]
        fw = forwarder(storage, cursors, api.url)
        started = time.monotonic()
        fw.run_once(T0 + INTERVAL_MS)
        elapsed = time.monotonic() - started
    assert len(api.requests) == 2
    assert elapsed >= 0.95  # the backoff alone would have waited ~0.01 s
    assert counter(fw, "fabcity_forwarded_readings_total") == 1


def test_retry_after_as_an_http_date_is_read() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("Fri, 27 Nov 2026 12:00:30 GMT", now) == 30
    assert retry_after_s("soon", now) is None


def test_a_400_is_counted_logged_and_the_cursor_moves_on(
        storage: SqliteStorage, cursors: ForwardCursors, caplog: pytest.LogCaptureFixture,
) -> None:
    storage.write([r("sds", "pm10", 20.0, T0 + 1), r("sds", "pm10", 30.0, T0 + INTERVAL_MS)])
    with serve(sensor_community) as api, caplog.at_level(logging.WARNING):
        api.script = [Scripted(400, body="sensor not registered")]
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + 2 * INTERVAL_MS)
    assert [q.body["sensordatavalues"][0]["value"] for q in api.requests] == ["20.00", "30.00"]
    assert counter(fw, "fabcity_forward_refused_readings_total") == 1
    assert counter(fw, "fabcity_forwarded_readings_total") == 1
    assert "HTTP 400" in caplog.text and "sensor not registered" in caplog.text
    assert cursors.load(fw.name)[("street", "pole-01", "sds", "pm10")] == \
        T0 + 2 * INTERVAL_MS - 1


def test_intervals_older_than_max_delay_are_skipped_not_dated_now(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write([r("sds", "pm10", 20.0, T0 + 1), r("sds", "pm10", 30.0, T0 + 10 * INTERVAL_MS)])
    with serve(sensor_community) as api:
        fw = forwarder(storage, cursors, api.url, max_delay_s=300)
        fw.run_once(T0 + 11 * INTERVAL_MS)
    assert [q.body["sensordatavalues"][0]["value"] for q in api.requests] == ["30.00"]
    assert fw.metrics.prometheus.get_sample_value(
        "fabcity_forward_skipped_readings_total",
        {"forwarder": fw.name, "reason": "stale"}) == 1


def test_a_day_of_intervals_is_sent_in_order_each_once(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    day = [r("sds", "pm10", float(i % 500), T0 + i * 60_000) for i in range(1440)]
    storage.write(day)
    with serve(sensor_community) as api:
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + 86_400_000 + INTERVAL_MS)
    windows = sorted({(x.ts_ms // INTERVAL_MS) for x in day})
    assert len(api.requests) == len(windows)
    expected = [f"{sum(v) / len(v):.2f}" for v in (
        [x.value for x in day if x.ts_ms // INTERVAL_MS == w] for w in windows)]
    assert [q.body["sensordatavalues"][0]["value"] for q in api.requests] == expected
    assert fw.status().lag_s == 0
