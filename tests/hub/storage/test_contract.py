"""The storage contract: every back-end, against its real server, gives the same answers.

Expected answers come from ``reference.py``, a plain model of the contract's words.
"""

import math
import random

import pytest

from fabcity.errors import ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading
from hub.storage.base import AGGREGATES, HOUR_MS, MINUTE_MS, SUM_SCALE, ReadingQuery, Storage
from hub.storage.rollup import RollupState, RollupWorker
from tests.hub.storage.conftest import StoreFactory
from tests.hub.storage.reference import expected_buckets, matching

T0 = 1_794_960_000_000  # 2026-11-18T00:00:00Z
SPAN_MS = 3 * HOUR_MS
END = T0 + SPAN_MS


def dataset() -> list[Reading]:
    """Two sites, a counter with two resets and a gap, gauges with flags and odd times."""
    rng = random.Random(7)
    out: list[Reading] = []
    energy = 1_000.0
    for i, ts in enumerate(range(T0, END, 7_000)):
        ts += rng.randrange(0, 900)  # not on whole seconds
        if i in (400, 1100):
            energy = rng.uniform(0, 3)  # the meter restarted
        elif not 600 <= i < 780:  # a 21-minute gap in the counter
            energy += rng.uniform(0, 9)
        if not 600 <= i < 780:
            out.append(Reading("fablab-bcn", "pi-laser", "clamp", "energy", round(energy, 3),
                               ts, "Wh"))
        out.append(Reading("fablab-bcn", "pi-laser", "clamp", "power",
                           round(rng.uniform(0, 2_500), 2), ts, "W"))
        out.append(Reading("street-1", "pole-01", "air", "pm2_5", round(rng.uniform(2, 80), 1),
                           ts + 3, "ug/m3", ("suspect_humidity",) if i % 50 == 0 else ()))
        if i % 3 == 0:
            out.append(Reading("street-1", "pole-01", "air", "temperature",
                               round(rng.uniform(-5, 35), 2), ts + 5, "degC"))
    return out


DATA = dataset()


def rows(readings: list[Reading]) -> list[tuple[object, ...]]:
    return [(r.site, r.device, r.sensor, r.metric, r.ts_ms, r.value, r.unit, r.flags)
            for r in readings]


def assert_buckets(found: list[Reading], q: ReadingQuery) -> None:
    expected = expected_buckets(DATA, q)
    got = [((r.site, r.device, r.sensor, r.metric), r.ts_ms, r.value) for r in found]
    assert [g[:2] for g in got] == [e[:2] for e in expected], q
    for (key, start, value), (_, _, want) in zip(got, expected, strict=True):
        assert math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-6), (q.agg, key, start)


@pytest.fixture
def filled(store: Storage) -> Storage:
    for i in range(0, len(DATA), 5_000):
        store.write(DATA[i:i + 5_000])
    return store


def test_raw_readings_come_back_exactly_in_series_then_time_order(filled: Storage) -> None:
    q = ReadingQuery(T0, END, limit=100_000)
    assert rows(filled.raw(q)) == rows(matching(DATA, q))


@pytest.mark.parametrize("filters", [
    {"site": "street-1"}, {"device": "pi-laser", "metric": "energy"}, {"sensor": "air"},
    {"metric": "temperature"}, {"site": "nowhere"},
])
def test_filters_select_the_same_readings(filled: Storage, filters: dict[str, str]) -> None:
    q = ReadingQuery(T0 + 600_000, T0 + 4_200_000, limit=100_000, **filters)
    assert rows(filled.raw(q)) == rows(matching(DATA, q))


def test_range_is_start_inclusive_end_exclusive_and_limit_is_global(filled: Storage) -> None:
    first = matching(DATA, ReadingQuery(T0, END))[0]
    q = ReadingQuery(first.ts_ms, first.ts_ms + 1, metric=first.metric, limit=10)
    assert rows(filled.raw(q)) == rows([first])
    assert filled.raw(ReadingQuery(first.ts_ms + 1, END, metric="energy", limit=1))[0].ts_ms \
        > first.ts_ms
    assert len(filled.raw(ReadingQuery(T0, END, limit=7))) == 7


def test_replaying_a_batch_stores_it_once(store: Storage) -> None:
    batch = DATA[:2_000]
    first = store.write(batch)
    again = store.write(batch)
    if store.counts_duplicates:
        assert (first, again) == (len(batch), 0)
    q = ReadingQuery(T0, END, limit=100_000)
    assert rows(store.raw(q)) == rows(matching(batch, q))


@pytest.mark.parametrize("agg", AGGREGATES)
@pytest.mark.parametrize("every_ms", [MINUTE_MS, 15 * MINUTE_MS, HOUR_MS])
def test_every_aggregate_matches_the_reference(filled: Storage, agg: str, every_ms: int) -> None:
    q = ReadingQuery(T0, END, every_ms=every_ms, agg=agg, limit=100_000)  # type: ignore[arg-type]
    assert_buckets(filled.query(q), q)


@pytest.mark.parametrize("agg", ["increase", "mean", "first", "count"])
def test_partial_edge_buckets_and_filters_downsample_like_the_reference(
        filled: Storage, agg: str) -> None:
    q = ReadingQuery(T0 + 1_234_567, END - 987_654, every_ms=10 * MINUTE_MS, agg=agg,  # type: ignore[arg-type]
                     device="pi-laser", limit=100_000)
    assert_buckets(filled.query(q), q)


@pytest.mark.parametrize("agg", AGGREGATES)
def test_rollups_give_the_same_answers_as_raw_points(
        open_store: StoreFactory, tmp_path: object, agg: str) -> None:
    store = open_store()
    store.write(DATA)
    state = RollupState(f"{tmp_path}/state.db", "contract")
    store.rollups = state
    RollupWorker(store, state).run_once(END + HOUR_MS)
    assert state.watermark(MINUTE_MS) >= END and state.watermark(HOUR_MS) == END  # type: ignore[operator]
    assert not state.dirty()
    for every_ms, start in ((MINUTE_MS, T0 + 7 * MINUTE_MS), (HOUR_MS, T0),
                            (30 * MINUTE_MS, T0 + 1_000)):
        q = ReadingQuery(start, END + 60_000, every_ms=every_ms, agg=agg, limit=100_000)  # type: ignore[arg-type]
        assert_buckets(store.query(q), q)
    state.close()


def test_sums_beside_values_near_the_float_limit_are_the_same_on_every_back_end(
        store: Storage) -> None:
    # Each 1-minute bucket: plain addition in time order, or where that overflows, the values
    # added divided by SUM_SCALE and the sum scaled back (the true sum when it fits).
    buckets = [[1.7e308, -1.7e308, 0.25, 1e-3], [1.7e308, 1.7e308], [1e300, 1e300, -1.5e300, 3.0],
               [-1.2e308, 5.5, 1.2e308], [2.0, 3.0], [-1.7e308, -1.7e308, 1.7e308]]
    store.write([Reading("lab", "pi-1", "m", "power", value, T0 + b * MINUTE_MS + i, "W")
                 for b, values in enumerate(buckets) for i, value in enumerate(values)])
    q = ReadingQuery(T0, T0 + len(buckets) * MINUTE_MS, every_ms=MINUTE_MS, limit=100)
    sums = {s.start_ms: s.sum for s in store.stats(q)}

    def in_order(values: list[float], scale: float = 1.0) -> float:
        total = 0.0
        for value in values:
            total += value / scale
        return total * scale

    def expected(values: list[float]) -> float:
        plain = in_order(values)
        return plain if math.isfinite(plain) else in_order(values, SUM_SCALE)

    assert sums == {T0 + b * MINUTE_MS: expected(values) for b, values in enumerate(buckets)}
    assert sums[T0] == 0.25 + 1e-3 and sums[T0 + 3 * MINUTE_MS] == 0.0
    assert math.isinf(sums[T0 + MINUTE_MS])  # 3.4e308 does not fit
    assert sums[T0 + 5 * MINUTE_MS] == -1.7e308  # it does, once the values are scaled


def test_a_late_reading_updates_the_rollups(open_store: StoreFactory, tmp_path: object) -> None:
    store = open_store()
    early = [r for r in DATA if r.metric == "power"]
    store.write(early[1:])
    state = RollupState(f"{tmp_path}/state.db", "late")
    store.rollups = state
    worker = RollupWorker(store, state)
    worker.run_once(END + HOUR_MS)
    late = early[:1]
    store.write(late)
    assert state.mark_late(late) == 1
    worker.run_once(END + HOUR_MS)
    q = ReadingQuery(T0, END, every_ms=HOUR_MS, agg="count", metric="power")
    assert [r.value for r in store.query(q)] == [float(v) for *_, v in
                                                 expected_buckets(DATA, q)]
    state.close()


def test_latest_is_the_newest_reading_of_every_series(filled: Storage) -> None:
    newest: dict[tuple[str, ...], Reading] = {}
    for r in DATA:
        key = (r.site, r.device, r.sensor, r.metric)
        if key not in newest or r.ts_ms > newest[key].ts_ms:
            newest[key] = r
    assert rows(filled.latest()) == rows([newest[k] for k in sorted(newest)])
    assert rows(filled.latest(site="street-1", metric="pm2_5")) == \
        rows([newest[("street-1", "pole-01", "air", "pm2_5")]])


def test_first_ms_health_and_a_second_close(store: Storage) -> None:
    assert store.first_ms() is None
    store.write(DATA[10:20])
    assert store.first_ms() == min(r.ts_ms for r in DATA[10:20])
    assert store.health() == "ok"
    store.close()
    store.close()


def test_an_unreachable_store_is_unavailable_not_a_crash(open_store: StoreFactory,
                                                         tmp_path: object) -> None:
    options = _unreachable(open_store, tmp_path)
    with pytest.raises(StorageUnavailable):  # at open (SQLite) or at the first write
        open_store(**options).write(DATA[:10])


def _unreachable(open_store: StoreFactory, tmp_path: object) -> dict[str, object]:
    from tests.servers import free_port

    backend = _backend_of(open_store)
    if backend == "sqlite":
        blocker = f"{tmp_path}/not-a-directory"
        open(blocker, "w").close()
        return {"path": f"{blocker}/hub.db"}
    return {"url": f"http://127.0.0.1:{free_port()}"}


def _backend_of(open_store: StoreFactory) -> str:
    probe = open_store()
    return {"SqliteStorage": "sqlite", "InfluxDB1Storage": "influxdb1"}.get(
        type(probe).__name__, "influxdb")


def test_readings_refused_for_good_are_classified(open_store: StoreFactory) -> None:
    backend = _backend_of(open_store)
    if backend == "sqlite":
        pytest.skip("SQLite takes every reading the contract allows")
    if backend == "influxdb":
        pytest.skip("an InfluxDB 2.x bucket's retention is set on the server; its 400 "
                    "answers are classified in test_influxdb2.py")
    store = open_store(retention_raw="1h")
    old = Reading("fablab-bcn", "pi-laser", "clamp", "power", 1.0, T0, "W")
    with pytest.raises(ReadingsRefused) as refused:
        store.write([old])
    assert "retention" in refused.value.reason
