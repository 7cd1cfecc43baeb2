"""Queries never trust rollups the worker has promised but not computed yet."""

from pathlib import Path

from fabcity.reading import Reading
from hub.storage.base import HOUR_MS, MINUTE_MS, ReadingQuery
from hub.storage.rollup import RollupState, RollupWorker
from hub.storage.sqlite import SqliteStorage

START = 1_795_000_000_000 // HOUR_MS * HOUR_MS
END = START + 3 * HOUR_MS


def _store(tmp_path: Path) -> tuple[SqliteStorage, RollupState]:
    store = SqliteStorage(tmp_path / "hub.db")
    store.write([Reading("s", "d", "x", "power", float(k), START + k * 10_000, "W")
                 for k in range((END - START) // 10_000)])
    state = RollupState(tmp_path / "state.db", store.describe())
    store.rollups = state
    return store, state


def _minutes(store: SqliteStorage) -> list[Reading]:
    return store.query(ReadingQuery(START, END, every_ms=MINUTE_MS, agg="count"))


def test_minutes_marked_but_not_yet_computed_are_read_from_raw_points(tmp_path: Path) -> None:
    store, state = _store(tmp_path)
    # What a pass does first: move the watermark, mark the minutes it passes dirty...
    state.set_watermark(MINUTE_MS, END)
    state.mark_dirty(range(START, END, MINUTE_MS))
    assert state.readable(MINUTE_MS) == START
    found = _minutes(store)  # ... and a query arrives before they are computed
    assert len(found) == 180 and {r.value for r in found} == {6.0}
    state.close()
    store.close()


def test_once_computed_the_rollups_are_read_again(tmp_path: Path) -> None:
    store, state = _store(tmp_path)
    RollupWorker(store, state).run_once(END + 3 * MINUTE_MS)
    assert (state.readable(MINUTE_MS) or 0) >= END and state.readable(HOUR_MS) == END
    assert len(_minutes(store)) == 180
    state.close()
    reopened = RollupState(tmp_path / "state.db", store.describe())
    assert (reopened.readable(MINUTE_MS) or 0) >= END
    reopened.mark_late([Reading("s", "d", "x", "power", 1.0, START + HOUR_MS + 5, "W")])
    assert reopened.readable(HOUR_MS) == START + HOUR_MS
    reopened.close()
    store.close()
