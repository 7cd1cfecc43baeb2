"""Buckets of the rollups' own size come straight from rollup rows, as readings or as values
the back-end works out: the same answer, reading for reading (and byte for byte as JSON), as
the general path through bucket statistics."""


import pytest

from fabcity.reading import Reading
from hub.api.cursor import Cursor, read_after
from hub.api.serialise import bucket_values_json, readings_json
from hub.storage.base import MINUTE_MS, ReadingQuery, RollupValues
from hub.storage.buckets import (
    counting_omitted,
    downsample,
    downsample_stats,
    downsample_values,
    rollup_plan,
)
from hub.storage.sqlite import SqliteStorage
from tests.hub.storage.conftest import rolled_up_sqlite

START = 1_795_000_000_000 // (60 * MINUTE_MS) * (60 * MINUTE_MS)
MINUTES = 90
END = START + MINUTES * MINUTE_MS
ROLLED = START + 60 * MINUTE_MS  # rollups stop here: the rest is read from raw points


def _readings() -> list[Reading]:
    out: list[Reading] = []
    for k in range(MINUTES * 4):  # every 15 s
        ts = START + k * 15_000 + 7
        minute = k // 4
        if minute % 11 != 5:  # gaps: every 11th minute of the gauges is missing
            out.append(Reading("a", "d1", "t", "temperature", 20.0 + (k % 7) * 0.1, ts, "C"))
            out.append(Reading("b", "d2", "h", "humidity", 50.0 - (k % 5) * 0.3, ts, None))
        counter = float(k % 37) * 3.5  # a counter that resets every 37 readings
        out.append(Reading("a", "d1", "m", "energy", counter, ts, "Wh"))
        huge = 1.7e308 if minute in (20, 21, 70) else 1.0  # sums and rises beyond floats
        out.append(Reading("b", "d3", "x", "flow", huge if k % 2 else 0.0, ts, "l"))
    # Series with no rollup row in some windows: one reading in the first minute, and a
    # series that starts after the rollups stop.
    out.append(Reading("c", "d4", "o", "once", 4.5, START + 30_007, "V"))
    out += [Reading("c", "d5", "l", "late", 1.0 + k, ROLLED + k * 20_000 + 3, "s")
            for k in range(40)]
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SqliteStorage:
    return rolled_up_sqlite(tmp_path_factory.mktemp("rows"), _readings(), ROLLED)


def _both(storage: SqliteStorage, q: ReadingQuery) -> tuple[list[Reading], int]:
    with counting_omitted() as fast_omitted:
        fast = downsample(storage, q)
    with counting_omitted() as general_omitted:
        general = downsample_stats(storage, q)
    assert fast == general
    assert [type(r.value) for r in fast] == [type(r.value) for r in general]
    assert fast_omitted.count == general_omitted.count
    return fast, fast_omitted.count


def _as_readings(found: RollupValues) -> list[Reading]:
    names, rows = found
    return [Reading(*names[series][:4], value, start_ms, names[series][4])
            for series, start_ms, value in rows]


def _values_match(storage: SqliteStorage, q: ReadingQuery, general: list[Reading],
                  omitted: int) -> None:
    """The values path gives ``general`` and counts ``omitted`` (``increase`` has none)."""
    with counting_omitted() as values_omitted:
        found = downsample_values(storage, q)
    if q.agg == "increase":
        assert found is None
        return
    assert found is not None
    assert _as_readings(found) == general
    assert values_omitted.count == omitted
    assert bucket_values_json(*found) == readings_json(general)


@pytest.mark.parametrize("agg", ["mean", "min", "max", "first", "last", "sum", "count",
                                 "increase"])
@pytest.mark.parametrize("site", [None, "a", "b", "c"])
@pytest.mark.parametrize(("start", "end"), [
    (START, END),  # whole minutes, the last 30 from raw points
    (START + 20_001, END - 9_000),  # partial buckets at both ends
    (START + 5 * MINUTE_MS + 1, ROLLED - 1),  # the live end inside the rollups
])
def test_the_rollup_rows_path_answers_as_the_general_path(
        store: SqliteStorage, agg: str, site: str | None, start: int, end: int) -> None:
    q = ReadingQuery(start, end, site, every_ms=MINUTE_MS, agg=agg,  # type: ignore[arg-type]
                     limit=100_000)
    plan = rollup_plan(store, q)
    assert plan is not None and plan[0] == MINUTE_MS  # the rollup rows path is taken
    found, omitted = _both(store, q)
    assert found or (site == "c" and end < ROLLED)  # c's series lie outside that window
    _values_match(store, q, found, omitted)
    if agg in ("sum", "increase") and site in (None, "b"):
        assert omitted > 0  # the flow's sums and rises beyond floats are left out
    for limit in (1, 37, 150):
        cut = ReadingQuery(start, end, site, every_ms=MINUTE_MS, agg=q.agg, limit=limit)
        page, page_omitted = _both(store, cut)
        assert page == found[:limit]
        _values_match(store, cut, page, page_omitted)


@pytest.mark.parametrize("agg", ["mean", "increase"])
def test_pages_through_cursors_join_into_the_whole_answer(store: SqliteStorage,
                                                          agg: str) -> None:
    q = ReadingQuery(START + 30_000, END, every_ms=MINUTE_MS, agg=agg,  # type: ignore[arg-type]
                     limit=100_000)
    whole = downsample_stats(store, q)
    pages: list[Reading] = []
    cursor: Cursor | None = None
    while True:
        page = read_after(store, q, cursor, 53)
        pages += page
        if len(page) < 53:
            break
        cursor = Cursor.after(page[-1])
    assert pages == whole


@pytest.mark.parametrize("limit", [30, 59, 61, 80])
def test_buckets_with_no_finite_value_do_not_shorten_a_cut_page(store: SqliteStorage,
                                                               limit: int) -> None:
    # The flow's sums of minutes 20 and 21 (rollups) and 70 (raw) are beyond floats: a page
    # whose rollup read stops after them is read again, longer, not filled from later rows.
    q = ReadingQuery(START, END, "b", "d3", every_ms=MINUTE_MS, agg="sum", limit=limit)
    general, omitted = _both(store, q)
    assert len(general) == limit and omitted >= 2
    whole = downsample_stats(store, ReadingQuery(START, END, "b", "d3", every_ms=MINUTE_MS,
                                                 agg="sum", limit=100_000))
    assert general == whole[:limit]
    _values_match(store, q, general, omitted)
