"""Forwarding cursors: per forwarder and series, the time of the last reading handed over.

Kept in the hub's state file (SQLite, ``synchronous=FULL``) like the dead letters and the
rollup watermarks. A forwarder moves a cursor only after the remote service accepted (or
refused for good) the readings up to it, and commits before it sends the next request: a
crash then repeats at most the one request that was in flight, and loses nothing.
"""

import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

from fabcity.errors import StorageUnavailable
from hub.statefile import open_state
from hub.storage.base import SeriesKey

__all__ = ["ForwardCursors"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forward_cursors (
    forwarder TEXT NOT NULL, site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL,
    metric TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    PRIMARY KEY (forwarder, site, device, sensor, metric)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forward_origins (
    forwarder TEXT PRIMARY KEY, start_ms INTEGER NOT NULL
) WITHOUT ROWID;
"""


class ForwardCursors:
    """Cursors of every forwarder of one hub, in its state file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_state(self.path, _SCHEMA)

    def origin(self, forwarder: str, default_ms: int) -> int:
        """Where series without a cursor start: fixed the first time a forwarder runs, so a
        series that appears later is forwarded from then on, not from its first reading."""
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO forward_origins VALUES (?, ?)",
                               (forwarder, default_ms))
            row = self._conn.execute("SELECT start_ms FROM forward_origins WHERE forwarder = ?",
                                     (forwarder,)).fetchone()
        return int(row[0])

    def load(self, forwarder: str) -> dict[SeriesKey, int]:
        """Every cursor of ``forwarder``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT site, device, sensor, metric, ts_ms FROM forward_cursors "
                "WHERE forwarder = ?", (forwarder,)).fetchall()
        return {(site, device, sensor, metric): ts for site, device, sensor, metric, ts in rows}

    def advance(self, forwarder: str, cursors: Mapping[SeriesKey, int]) -> None:
        """Move cursors forward (never back), all in one durable transaction."""
        if not cursors:
            return
        rows = [(forwarder, *key, ts) for key, ts in cursors.items()]
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT INTO forward_cursors VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (forwarder, site, device, sensor, metric) DO UPDATE SET "
                        "ts_ms = MAX(ts_ms, excluded.ts_ms)", rows)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot write the hub state file {self.path}: {exc}"
                                     ) from exc

    def close(self) -> None:
        """Close the file; safe to call twice."""
        with self._lock:
            self._conn.close()
