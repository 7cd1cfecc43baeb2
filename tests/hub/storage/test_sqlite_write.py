"""SQLite's write path: multi-row INSERTs of any batch size store every point once."""

from pathlib import Path

import pytest

from fabcity.reading import Reading
from hub.storage.base import ReadingQuery
from hub.storage.sqlite import POINTS_PER_INSERT, SqliteStorage

T0 = 1_700_000_000_000


def readings(start: int, count: int) -> list[Reading]:
    return [Reading("lab", "pi-1", f"s{i % 7}", "pm2_5", float(i), T0 + i, "ug/m3",
                    ("suspect_spike",) if i % 11 == 0 else ()) for i in range(start, start + count)]


@pytest.mark.parametrize("count", [1, 3, POINTS_PER_INSERT - 1, POINTS_PER_INSERT,
                                   2 * POINTS_PER_INSERT + 300 + 7])
def test_every_batch_size_stores_each_point_once_and_counts_only_new_ones(
    tmp_path: Path, count: int
) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    try:
        half = count // 2
        assert storage.write(readings(0, half)) == half
        assert storage.write(readings(0, count)) == count - half  # the first half is a replay
        assert storage.write(readings(0, count)) == 0
        stored = storage.raw(ReadingQuery(T0, T0 + count, limit=10 * count))
        assert sorted(stored, key=lambda r: r.ts_ms) == readings(0, count)
        assert storage.count() == count
    finally:
        storage.close()


def test_latest_is_the_newest_point_of_each_series(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    try:
        storage.write(readings(0, 1000)[::-1])  # newest first: order within a batch is no clue
        latest = {r.sensor: r for r in storage.latest()}
        assert latest == {f"s{i % 7}": r for i, r in enumerate(readings(0, 1000))}
    finally:
        storage.close()
