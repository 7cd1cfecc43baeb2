"""Rollups: 1-minute and 1-hour bucket statistics kept beside the raw readings.

A one-year chart then reads 8,760 hourly rows per series instead of millions of points, and
the rollups outlive the raw retention. The same code serves every back-end: it asks the
back-end for bucket statistics (:meth:`Storage.stats`) of each finished minute, stores them
(:meth:`Storage.write_rollup`), and merges minutes into hours.

Progress lives in the hub's state file: a *watermark* per resolution (everything before it
is rolled up) and *dirty* minutes. A reading that arrives late (its time is before the
1-minute watermark, e.g. an edge agent draining its buffer after an outage) marks its minute
dirty before its message is acked, so its rollups are recomputed on the next pass; a crash
in between leaves the mark, and the pass runs again.

Several processes share the state file (``fabcity hub ingest`` workers mark late minutes, one
of them runs the rollups, ``fabcity hub api`` reads the watermarks): each reads the
watermarks again whenever another process committed (SQLite ``data_version``), before it
decides whether a reading is late or how far the rollups can be trusted.
"""

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from fabcity.errors import FabcityError, StorageUnavailable
from fabcity.reading import Reading, now_ms
from hub.statefile import open_state
from hub.storage.base import HOUR_MS, MINUTE_MS, ReadingQuery, Storage
from hub.storage.buckets import merge

__all__ = ["RollupState", "RollupWorker"]

log = logging.getLogger(__name__)

SETTLE_MS = 2 * MINUTE_MS  # a minute is rolled up this long after it ends
WINDOW_MS = HOUR_MS  # minutes rolled up per storage query
INTERVAL_S = 10.0  # between passes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollup_watermarks (
    storage TEXT NOT NULL, resolution_ms INTEGER NOT NULL, watermark_ms INTEGER NOT NULL,
    PRIMARY KEY (storage, resolution_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_dirty (
    storage TEXT NOT NULL, minute_ms INTEGER NOT NULL, PRIMARY KEY (storage, minute_ms)
) WITHOUT ROWID;
"""


class RollupState:
    """Watermarks and dirty minutes of one storage, in the hub's state file."""

    def __init__(self, path: str | Path, storage_id: str) -> None:
        self.path = Path(path)
        self.storage_id = storage_id
        self._lock = threading.Lock()
        self._conn = open_state(self.path, _SCHEMA)
        self._version = -1
        try:
            self._reload()
        except (OSError, sqlite3.Error) as exc:
            raise StorageUnavailable(f"cannot open the hub state file {self.path}: {exc}"
                                     ) from exc

    def _reload(self) -> None:
        """Read the watermarks and the oldest dirty minute again if another process (the one
        running the rollups, an ingest worker marking late readings) committed since."""
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            return
        self._version = version
        self._watermarks: dict[int, int] = dict(self._conn.execute(
            "SELECT resolution_ms, watermark_ms FROM rollup_watermarks WHERE storage = ?",
            (self.storage_id,)).fetchall())
        self._oldest_dirty = self._min_dirty()

    def _fresh(self) -> None:
        try:
            with self._lock:
                self._reload()
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot read the hub state file {self.path}: {exc}"
                                     ) from exc

    def watermark(self, resolution_ms: int) -> int | None:
        """Everything before this instant is rolled up at ``resolution_ms``."""
        self._fresh()
        return self._watermarks.get(resolution_ms)

    def readable(self, resolution_ms: int) -> int | None:
        """Rollups of ``resolution_ms`` are complete before this instant: the watermark, or
        the start of the oldest bucket with a minute still to be (re)computed.

        The watermark moves before its minutes are computed (see ``_advance_minutes``), so a
        query must not trust it alone: while a pass catches up on hours of history, the
        minutes it has not reached yet would be missing from the answer.
        """
        self._fresh()
        watermark = self._watermarks.get(resolution_ms)
        oldest = self._oldest_dirty
        if watermark is None or oldest is None:
            return watermark
        return min(watermark, oldest // resolution_ms * resolution_ms)

    def _min_dirty(self) -> int | None:
        row = self._conn.execute("SELECT MIN(minute_ms) FROM rollup_dirty WHERE storage = ?",
                                 (self.storage_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _dirtied(self, minutes: Iterable[int]) -> None:
        oldest = min(minutes, default=None)
        if oldest is not None and (self._oldest_dirty is None or oldest < self._oldest_dirty):
            self._oldest_dirty = oldest

    def set_watermark(self, resolution_ms: int, at_ms: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO rollup_watermarks VALUES (?, ?, ?)",
                (self.storage_id, resolution_ms, at_ms))
            self._watermarks[resolution_ms] = at_ms

    def mark_late(self, readings: Sequence[Reading]) -> int:
        """Mark the minutes of readings older than the watermark dirty; how many minutes."""
        self._fresh()  # the watermark may have moved in the process running the rollups
        watermark = self._watermarks.get(MINUTE_MS)
        if watermark is None or not readings:
            return 0
        if min(r.ts_ms for r in readings) >= watermark:
            return 0
        minutes = {r.ts_ms // MINUTE_MS * MINUTE_MS for r in readings if r.ts_ms < watermark}
        try:
            with self._lock:
                self._conn.executemany("INSERT OR IGNORE INTO rollup_dirty VALUES (?, ?)",
                                       [(self.storage_id, m) for m in minutes])
                self._dirtied(minutes)
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot write the hub state file {self.path}: {exc}"
                                     ) from exc
        return len(minutes)

    def mark_dirty(self, minutes: Sequence[int]) -> None:
        """Mark minutes for (re)computation."""
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR IGNORE INTO rollup_dirty VALUES (?, ?)",
                                   [(self.storage_id, m) for m in minutes])
            self._conn.execute("COMMIT")
            self._dirtied(minutes)

    def dirty(self, limit: int = 50_000) -> list[int]:
        """Dirty minutes, oldest first."""
        with self._lock:
            return [row[0] for row in self._conn.execute(
                "SELECT minute_ms FROM rollup_dirty WHERE storage = ? ORDER BY minute_ms "
                "LIMIT ?", (self.storage_id, limit))]

    def clean(self, minutes: Sequence[int]) -> None:
        with self._lock:
            self._conn.executemany("DELETE FROM rollup_dirty WHERE storage = ? AND minute_ms = ?",
                                   [(self.storage_id, m) for m in minutes])
            self._oldest_dirty = self._min_dirty()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _spans(starts: Sequence[int], size_ms: int, longest_ms: int = 2**62,
           ) -> list[tuple[int, int]]:
    """Sorted bucket starts joined into ``[start, end)`` spans of adjacent buckets, each at
    most ``longest_ms`` long."""
    spans: list[tuple[int, int]] = []
    for start in starts:
        if spans and spans[-1][1] == start and start + size_ms - spans[-1][0] <= longest_ms:
            spans[-1] = (spans[-1][0], start + size_ms)
        else:
            spans.append((start, start + size_ms))
    return spans


class RollupWorker:
    """Keeps the rollups of one storage up to date, in a thread of its own."""

    def __init__(self, storage: Storage, state: RollupState, interval_s: float = INTERVAL_S,
                 raw_retention_ms: int | None = None) -> None:
        self.storage = storage
        self.state = state
        self.interval_s = interval_s
        self.raw_retention_ms = raw_retention_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rollups", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once(now_ms())
            except (FabcityError, OSError) as exc:  # storage down: try again next pass
                self.last_error = str(exc)
                if not self._failing:
                    log.warning("rollups paused: %s (retrying every %.0f s)", exc,
                                self.interval_s)
                self._failing = True
            except Exception:
                self.last_error = "internal error (see the log)"
                log.exception("rollup pass failed")
            else:
                if self._failing:
                    log.info("rollups resumed")
                self._failing = False
                self.last_error = None
            self._stop.wait(self.interval_s)

    def run_once(self, now: int, max_windows: int = 24) -> None:
        """One pass: new minutes, dirty minutes, then hours; expiry last."""
        target = (now - SETTLE_MS) // MINUTE_MS * MINUTE_MS
        self._advance_minutes(target, max_windows)
        self._recompute_dirty(now)
        minute_mark = self.state.watermark(MINUTE_MS)
        if minute_mark is not None:
            self._advance_hours(minute_mark // HOUR_MS * HOUR_MS, max_windows)
        self.storage.expire(now)

    def _advance_minutes(self, target: int, max_windows: int) -> None:
        """Move the 1-minute watermark towards ``target``, marking the minutes it passes
        dirty first: a reading stored while they are computed is then either seen by the
        computation or marked late, never missed; a crash leaves them dirty."""
        mark = self.state.watermark(MINUTE_MS)
        if mark is None:
            first = self.storage.first_ms()
            mark = target if first is None else min(first // MINUTE_MS * MINUTE_MS, target)
            self.state.set_watermark(MINUTE_MS, mark)
        end = min(mark + max_windows * WINDOW_MS, target)
        if end > mark:
            self.state.mark_dirty(range(mark, end, MINUTE_MS))
            self.state.set_watermark(MINUTE_MS, end)

    def _roll_minutes(self, start: int, end: int) -> None:
        rows = self.storage.stats(ReadingQuery(start, end, every_ms=MINUTE_MS, limit=2**62))
        self.storage.write_rollup(MINUTE_MS, rows)

    def _roll_hours(self, start: int, end: int) -> None:
        minutes = self.storage.read_rollup(MINUTE_MS, ReadingQuery(start, end, limit=2**62))
        self.storage.write_rollup(HOUR_MS, merge(minutes, HOUR_MS))

    def _recompute_dirty(self, now: int) -> None:
        minutes = self.state.dirty()
        if not minutes:
            return
        oldest = None if self.raw_retention_ms is None else now - self.raw_retention_ms
        live = [m for m in minutes if oldest is None or m >= oldest]  # raw gone: keep rollup
        for start, end in _spans(live, MINUTE_MS, WINDOW_MS):
            if self._stop.is_set():
                return
            self._roll_minutes(start, end)
        hour_mark = self.state.watermark(HOUR_MS)
        hours = sorted({m // HOUR_MS * HOUR_MS for m in live})
        for start, end in _spans([h for h in hours if hour_mark is not None and h < hour_mark],
                                 HOUR_MS):
            self._roll_hours(start, end)
        self.state.clean(minutes)

    def _advance_hours(self, target: int, max_windows: int) -> None:
        mark = self.state.watermark(HOUR_MS)
        if mark is None:
            minute_start = self.storage.first_ms()
            mark = target if minute_start is None else min(minute_start // HOUR_MS * HOUR_MS,
                                                           target)
            self.state.set_watermark(HOUR_MS, mark)
        for _ in range(max_windows):
            if mark >= target or self._stop.is_set():
                return
            end = min(mark + 24 * HOUR_MS, target)
            self._roll_hours(mark, end)
            self.state.set_watermark(HOUR_MS, end)
            mark = end
