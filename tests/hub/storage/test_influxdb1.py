"""The InfluxDB 1.x back-end against a real InfluxDB 1.6, compared with SQLite."""

import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from fabcity.errors import ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading, now_ms
from hub.storage.base import BucketStats, ReadingQuery
from hub.storage.influxdb1 import InfluxDB1Storage
from hub.storage.sqlite import SqliteStorage
from tests.hub.storage.backends import influx_name, open_influxdb1, open_sqlite
from tests.servers import InfluxDB1, free_port

pytestmark = pytest.mark.integration

BASE_MS = 1_790_000_123_456  # not aligned to any bucket
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS


@pytest.fixture
def store(influxdb1: InfluxDB1, request: pytest.FixtureRequest) -> Iterator[InfluxDB1Storage]:
    storage = open_influxdb1(influxdb1, request.node.name)
    yield storage
    storage.close()


def history(seed: int = 7) -> list[Reading]:
    """Three weeks of a counter with resets and gaps, a temperature and a power series."""
    rng = random.Random(seed)
    out: list[Reading] = []
    for site, device, sensor, metric, unit in [
        ("lab", "meter-1", "pzem", "energy", "Wh"), ("lab", "pi-2", "bme280", "temperature", None),
        ("depot", "cnc", "clamp", "power", "W"), ("lab", "meter-1", "aux", "energy", "Wh"),
    ]:
        ts, value = BASE_MS, rng.uniform(0, 50)
        while ts < BASE_MS + 3 * WEEK_MS:
            if metric == "energy":
                value = 0.0 if rng.random() < 0.03 else value + rng.choice([0.0, rng.uniform(0, 9)])
                if rng.random() < 0.02:
                    value = rng.uniform(0, value)  # a reset to somewhere below
            else:
                value = round(rng.uniform(-5, 40), 2)
            out.append(Reading(site, device, sensor, metric, value, ts, unit,
                               ("suspect",) if rng.random() < 0.05 else ()))
            ts += rng.choice([1_000, 17_000, 59_999, 60_000, 600_000, 3_599_999, 7_200_000,
                              DAY_MS + 1])
    return out


def assert_same_stats(got: list[BucketStats], want: list[BucketStats]) -> None:
    assert [(r.key, r.unit, r.start_ms, r.count) for r in got] == [
        (r.key, r.unit, r.start_ms, r.count) for r in want]
    for a, b in zip(got, want, strict=True):
        for name in ("sum", "min", "max", "first", "last", "increase"):
            assert math.isclose(getattr(a, name), getattr(b, name), rel_tol=1e-9, abs_tol=1e-6), (
                name, a, b)


@pytest.fixture
def both(store: InfluxDB1Storage, tmp_path: Path) -> Iterator[tuple[InfluxDB1Storage,
                                                                     SqliteStorage]]:
    sqlite = open_sqlite(tmp_path, "reference")
    readings = history()
    store.write(readings)
    sqlite.write(readings)
    yield store, sqlite
    sqlite.close()


def test_start_creates_the_database_and_retention_policies_with_their_durations(
    influxdb1: InfluxDB1,
) -> None:
    options = {"retention_raw": "30d", "retention_1m": "90d", "retention_1h": "inf"}
    open_influxdb1(influxdb1, "rp_durations", **options).close()
    answer = influxdb1.query('SHOW RETENTION POLICIES ON "rp_durations"')
    rows = {row[0]: row for row in answer["results"][0]["series"][0]["values"]}  # type: ignore[index]
    assert rows["fabcity_raw"][1:] == ["720h0m0s", "24h0m0s", 1, True]
    assert rows["fabcity_1m"][1] == "2160h0m0s"
    assert rows["fabcity_1h"][1] == "0s"
    open_influxdb1(influxdb1, "rp_durations", retention_raw="1h").close()  # altered on start
    answer = influxdb1.query('SHOW RETENTION POLICIES ON "rp_durations"')
    rows = {row[0]: row for row in answer["results"][0]["series"][0]["values"]}  # type: ignore[index]
    assert rows["fabcity_raw"][1:] == ["1h0m0s", "1h0m0s", 1, True]


def test_written_readings_read_back_raw_with_units_and_flags(store: InfluxDB1Storage) -> None:
    readings = [
        Reading("lab", "pi-1", "sds011", "pm2_5", 12.0, BASE_MS, "ug/m3"),
        Reading("lab", "pi-1", "bme280", "humidity", 40.0, BASE_MS + 1, "%", ("suspect", "hot")),
        Reading("lab", "pi-1", "bme280", "temperature", 21.5, BASE_MS + 2, "°C"),
        Reading("lab", "pi-1", "odd", "flux", 3.0, BASE_MS + 3, "(kg*m/s^2)"),
    ]
    assert store.write(readings) is None
    got = store.raw(ReadingQuery(BASE_MS, BASE_MS + 10))
    assert got == sorted(readings, key=lambda r: (r[:4], r.ts_ms))
    assert store.raw(ReadingQuery(BASE_MS, BASE_MS + 3, sensor="bme280")) == [
        readings[1], readings[2]]
    assert store.first_ms() == BASE_MS


def test_stats_equal_sqlite_for_counters_gaps_and_every_bucket_size(
    both: tuple[InfluxDB1Storage, SqliteStorage],
) -> None:
    influx, sqlite = both
    ranges = [(BASE_MS - WEEK_MS, BASE_MS + 4 * WEEK_MS),  # everything
              (BASE_MS + 123_457, BASE_MS + 10 * DAY_MS + 777),  # edges inside buckets
              (BASE_MS + 2 * DAY_MS, BASE_MS + 2 * DAY_MS + 60_000)]
    for every in (60_000, 3_600_000, DAY_MS, WEEK_MS):
        for start, end in ranges:
            for filters in ({}, {"site": "lab", "metric": "energy"}, {"sensor": "clamp"}):
                q = ReadingQuery(start, end, every_ms=every, **filters)  # type: ignore[arg-type]
                assert_same_stats(influx.stats(q), sqlite.stats(q))


def test_weekly_buckets_start_on_the_epochs_thursday_like_sqlite(
    both: tuple[InfluxDB1Storage, SqliteStorage],
) -> None:
    influx, _ = both
    q = ReadingQuery(BASE_MS, BASE_MS + 3 * WEEK_MS, every_ms=WEEK_MS)
    assert {row.start_ms % WEEK_MS for row in influx.stats(q)} == {0}


def test_raw_latest_and_first_equal_sqlite(both: tuple[InfluxDB1Storage, SqliteStorage]) -> None:
    influx, sqlite = both
    for q in (ReadingQuery(0, BASE_MS + 4 * WEEK_MS),
              ReadingQuery(BASE_MS + DAY_MS, BASE_MS + 2 * DAY_MS, limit=37),
              ReadingQuery(0, BASE_MS + 4 * WEEK_MS, site="lab", metric="energy", limit=900)):
        assert influx.raw(q) == sqlite.raw(q)
    assert influx.latest() == sqlite.latest()
    assert influx.latest(site="lab", metric="energy") == sqlite.latest(site="lab",
                                                                        metric="energy")
    assert influx.first_ms() == sqlite.first_ms()


def test_downsampled_queries_equal_sqlite(both: tuple[InfluxDB1Storage, SqliteStorage]) -> None:
    influx, sqlite = both
    for agg in ("mean", "increase", "last", "count"):
        q = ReadingQuery(BASE_MS, BASE_MS + 2 * WEEK_MS, every_ms=3_600_000, agg=agg)  # type: ignore[arg-type]
        got, want = influx.query(q), sqlite.query(q)
        assert [(*r[:4], r.ts_ms) for r in got] == [(*r[:4], r.ts_ms) for r in want]
        pairs = zip(got, want, strict=True)
        assert all(math.isclose(a.value, b.value, abs_tol=1e-6) for a, b in pairs)


def test_rollups_round_trip(both: tuple[InfluxDB1Storage, SqliteStorage]) -> None:
    influx, sqlite = both
    q = ReadingQuery(BASE_MS, BASE_MS + WEEK_MS)
    for resolution in (60_000, 3_600_000):
        rows = sqlite.stats(q.window(q.start_ms, q.end_ms, resolution))
        influx.write_rollup(resolution, rows)
        influx.write_rollup(resolution, rows)  # idempotent
        everything = q.window(BASE_MS - WEEK_MS, BASE_MS + WEEK_MS)  # the first bucket starts
        assert_same_stats(influx.read_rollup(resolution, everything), rows)  # before BASE_MS
        part = ReadingQuery(BASE_MS + DAY_MS, BASE_MS + 2 * DAY_MS, metric="energy")
        assert_same_stats(influx.read_rollup(resolution, part), [
            r for r in rows if r.metric == "energy" and part.start_ms <= r.start_ms < part.end_ms])


def test_a_replayed_batch_is_stored_once(store: InfluxDB1Storage) -> None:
    readings = history()[:500]
    store.write(readings)
    store.write(readings)
    assert len(store.raw(ReadingQuery(0, BASE_MS + 4 * WEEK_MS, limit=10_000))) == 500


def test_a_point_older_than_the_raw_retention_is_refused_with_the_servers_reason(
    influxdb1: InfluxDB1,
) -> None:
    storage = open_influxdb1(influxdb1, "short_retention", retention_raw="1h")
    now = now_ms()
    old = Reading("lab", "pi-1", "bme280", "temperature", 20.0, now - 2 * 3_600_000)
    fresh = Reading("lab", "pi-1", "bme280", "temperature", 21.0, now)
    with pytest.raises(ReadingsRefused, match="points beyond retention policy"):
        storage.write([old, fresh])
    assert storage.raw(ReadingQuery(now - 3 * 3_600_000, now + 1)) == [fresh]
    storage.close()


def test_a_server_nobody_listens_on_is_unavailable() -> None:
    storage = InfluxDB1Storage(url=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    reading = Reading("lab", "pi-1", "bme280", "temperature", 20.0, BASE_MS)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        storage.write([reading])
    with pytest.raises(StorageUnavailable):
        storage.raw(ReadingQuery(0, BASE_MS))
    assert storage.health() != "ok"
    storage.close()


def test_a_missing_database_without_create_database_names_both(influxdb1: InfluxDB1) -> None:
    storage = open_influxdb1(influxdb1, "never_created", create_database=False)
    reading = Reading("lab", "pi-1", "bme280", "temperature", 20.0, BASE_MS)
    with pytest.raises(StorageUnavailable, match=r"never_created.*create_database"):
        storage.write([reading])
    assert storage.health() != "ok"


def test_a_query_error_is_storage_unavailable_with_the_servers_message(
    store: InfluxDB1Storage,
) -> None:
    with pytest.raises(StorageUnavailable, match="error parsing query"):
        store.ql.select("SELEC nothing")
    assert store.health() == "ok"


def test_options_are_validated_and_describe_has_no_password() -> None:
    with pytest.raises(ValidationError, match="databse"):
        InfluxDB1Storage.Options.model_validate({"databse": "x"})
    with pytest.raises(ValidationError, match="database"):
        InfluxDB1Storage.Options.model_validate({"database": 'x" y'})
    options = InfluxDB1Storage.Options.model_validate(
        {"url": f"http://127.0.0.1:{free_port()}", "username": "hub", "password": "s3cret"})
    storage = InfluxDB1Storage.from_options(options)
    assert "s3cret" not in storage.describe() and "s3cret" not in repr(options)
    storage.close()


def test_basic_auth_is_used_and_refused_credentials_are_explained(tmp_path: Path) -> None:
    server = InfluxDB1(tmp_path / "auth")
    server.conf.write_text(server.conf.read_text().replace("auth-enabled = false",
                                                           "auth-enabled = true"))
    server.start()
    try:
        server.query("CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES")
        good = InfluxDB1Storage(url=server.url, database=influx_name("auth_db"),
                                username="admin", password="right")
        reading = Reading("lab", "pi-1", "bme280", "temperature", 20.0, BASE_MS)
        good.write([reading])
        assert good.raw(ReadingQuery(0, BASE_MS + 1)) == [reading]
        assert good.health() == "ok"
        bad = InfluxDB1Storage(url=server.url, database="auth_db", username="admin",
                               password="wrong")
        with pytest.raises(StorageUnavailable, match=r"refused the credentials.*username"):
            bad.write([reading])
        assert "credentials" in bad.health()
        good.close()
        bad.close()
    finally:
        server.stop()


def test_reading_a_database_not_created_yet_finds_nothing(influxdb1: InfluxDB1) -> None:
    store = InfluxDB1Storage(url=influxdb1.url, database="never_created",
                             create_database=False)
    try:
        assert store.first_ms() is None
        assert store.latest() == []
        assert store.raw(ReadingQuery(0, 2**40)) == []
    finally:
        store.close()
