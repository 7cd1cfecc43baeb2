"""Several processes share the rollup progress: an ingest worker marks a late reading dirty
against the watermark another process moved, and a reader sees how far rollups go."""

from pathlib import Path

from fabcity.reading import Reading
from hub.storage.base import HOUR_MS, MINUTE_MS
from hub.storage.rollup import RollupState

START = 1_795_000_000_000 // HOUR_MS * HOUR_MS


def test_watermark_moved_elsewhere_is_seen_before_a_late_reading_is_judged(
    tmp_path: Path,
) -> None:
    rolling = RollupState(tmp_path / "state.db", "sqlite:x")  # the process running rollups
    ingesting = RollupState(tmp_path / "state.db", "sqlite:x")  # another ingest worker
    late = [Reading("s", "d", "x", "power", 1.0, START + 5 * MINUTE_MS, "W")]
    assert ingesting.mark_late(late) == 0  # nothing rolled up yet: not late
    rolling.set_watermark(MINUTE_MS, START + HOUR_MS)
    assert ingesting.mark_late(late) == 1
    assert rolling.dirty() == [START + 5 * MINUTE_MS]
    assert rolling.readable(MINUTE_MS) == START + 5 * MINUTE_MS
    rolling.clean([START + 5 * MINUTE_MS])
    assert ingesting.readable(MINUTE_MS) == START + HOUR_MS
    rolling.close()
    ingesting.close()
