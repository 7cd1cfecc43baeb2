"""The durable store-and-forward buffer: readings wait here until the broker has them.

A reading enters in one transaction and leaves only after the broker's PUBACK, so it survives
a SIGKILL or a power cut (``synchronous = "full"``). The buffer is bounded: when full it drops
the oldest readings first and counts them in ``dropped``, which survives restarts.
"""

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from fabcity.errors import ConfigError
from fabcity.logs import rate_limited
from fabcity.reading import Reading

__all__ = ["Buffer"]

log = rate_limited(logging.getLogger(__name__))  # per-message lines must not flood

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buffer (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL,
    value REAL NOT NULL, unit TEXT NOT NULL, ts_ms INTEGER NOT NULL, flags TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Buffer:
    """A bounded FIFO of readings in one SQLite file, safe to share between threads."""

    def __init__(
        self,
        path: str | Path,
        max_readings: int = 1_000_000,
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        self.path = Path(path)
        self.max_readings = max_readings
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"buffer.path: cannot open {self.path}: {exc}") from None
        self._count = int(self._conn.execute("SELECT COUNT(*) FROM buffer").fetchone()[0])
        row = self._conn.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        self._dropped = int(row[0]) if row else 0

    def __len__(self) -> int:
        return self._count

    @property
    def dropped(self) -> int:
        """Readings discarded because the buffer was full, since it was created."""
        return self._dropped

    def put(self, readings: Sequence[Reading]) -> None:
        """Append readings durably, dropping the oldest if the buffer overflows."""
        if not readings:
            return
        rows = [(r.site, r.device, r.sensor, r.metric, r.value, r.unit or "", r.ts_ms,
                 ",".join(r.flags) or None) for r in readings]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO buffer (site, device, sensor, metric, value, unit, ts_ms, flags)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                count = self._count + len(rows)
                overflow = count - self.max_readings
                if overflow > 0:
                    deleted = self._conn.execute(
                        "DELETE FROM buffer WHERE id IN "
                        "(SELECT id FROM buffer ORDER BY id LIMIT ?)", (overflow,)).rowcount
                    count -= deleted
                    self._conn.execute(
                        "INSERT INTO counters VALUES ('dropped', ?) "
                        "ON CONFLICT DO UPDATE SET value = value + excluded.value", (deleted,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            if overflow > 0:
                self._dropped += deleted
                log.warning("buffer full (%d readings): dropped the %d oldest", self.max_readings,
                            deleted)
            self._count = count

    def take(self, after_id: int, limit: int) -> list[tuple[int, Reading]]:
        """Up to ``limit`` oldest readings with an id above ``after_id``, with their ids."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, site, device, sensor, metric, value, unit, ts_ms, flags FROM buffer "
                "WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
        return [
            (row_id, Reading(site, device, sensor, metric, value, ts_ms, unit,
                             tuple(flags.split(",")) if flags else ()))
            for row_id, site, device, sensor, metric, value, unit, ts_ms, flags in rows
        ]

    def remove(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Delete the readings whose ids fall in the inclusive ``(first, last)`` ranges."""
        ranges = list(ranges)
        if not ranges:
            return 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                removed = 0
                for first, last in ranges:
                    removed += self._conn.execute(
                        "DELETE FROM buffer WHERE id BETWEEN ? AND ?", (first, last)).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._count -= removed
        return removed

    def close(self) -> None:
        """Close the database file; safe to call twice."""
        with self._lock:
            self._conn.close()
