"""SQLite reads find points through the primary key (series, ts_ms), never by a table scan."""

from pathlib import Path

import pytest

from fabcity.reading import Reading
from hub.storage.base import MINUTE_MS, ReadingQuery
from hub.storage.sqlite import _NAMES, _READ_ROLLUP, _STATS, SqliteStorage


@pytest.fixture
def storage(tmp_path: Path) -> SqliteStorage:
    store = SqliteStorage(tmp_path / "hub.db")
    store.write([Reading("s", f"d{i}", "x", "power", 1.0, 1_000 * k, "W")
                 for i in range(5) for k in range(200)])
    return store


def _plan(storage: SqliteStorage, sql: str, params: list[object]) -> str:
    rows = storage._conn().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return "\n".join(row[-1] for row in rows)


@pytest.mark.parametrize("device", [None, "d1"])
def test_bucket_statistics_search_points_by_primary_key(storage: SqliteStorage,
                                                        device: str | None) -> None:
    q = ReadingQuery(0, 100_000, device=device, every_ms=MINUTE_MS)
    where, params = storage._where(q, "p.ts_ms")
    plan = _plan(storage, _STATS.format(names=_NAMES, every=MINUTE_MS, where=where), params)
    assert "SEARCH p USING PRIMARY KEY (series=? AND ts_ms>? AND ts_ms<?)" in plan
    assert "SCAN p" not in plan


def test_rollup_reads_search_by_primary_key(storage: SqliteStorage) -> None:
    where, params = storage._where(ReadingQuery(0, 100_000, device="d1"), "r.start_ms")
    plan = _plan(storage, _READ_ROLLUP.format(names=_NAMES, where=where),
                 [MINUTE_MS, *params])
    assert "SEARCH r USING PRIMARY KEY (resolution_ms=? AND series=? AND start_ms>? AND " \
           "start_ms<?)" in plan
