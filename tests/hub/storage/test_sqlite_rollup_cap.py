"""Rollup reads stop at the rows an answer's limit can use, and the answer stays the same."""

from pathlib import Path

from fabcity.reading import Reading
from hub.storage.base import MINUTE_MS, BucketStats, ReadingQuery
from hub.storage.sqlite import SqliteStorage

T0 = 1_700_000_000_000 // MINUTE_MS * MINUTE_MS


def test_rollup_reads_stop_at_what_the_limit_can_use(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "hub.db")
    try:
        store.write([Reading("lab", f"pi-{s}", "air", "pm2_5", 1.0, T0, "ug/m3")
                     for s in range(3)])
        rows = [BucketStats("lab", f"pi-{s}", "air", "pm2_5", "ug/m3", T0 + m * MINUTE_MS,
                            1, float(m), float(m), float(m), float(m), float(m), 0.0)
                for s in range(3) for m in range(60)]
        store.write_rollup(MINUTE_MS, rows)
        whole = ReadingQuery(T0, T0 + 60 * MINUTE_MS, limit=2**62)
        assert len(store.read_rollup(MINUTE_MS, whole)) == 180
        per_minute = ReadingQuery(T0, T0 + 60 * MINUTE_MS, every_ms=MINUTE_MS, limit=70)
        assert store.read_rollup(MINUTE_MS, per_minute) == \
            store.read_rollup(MINUTE_MS, whole)[:70]
        five_minutes = ReadingQuery(T0, T0 + 60 * MINUTE_MS, every_ms=5 * MINUTE_MS, limit=7)
        assert len(store.read_rollup(MINUTE_MS, five_minutes)) == 35
    finally:
        store.close()
