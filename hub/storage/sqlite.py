"""SQLite storage, the embedded default: one file, WAL, batched transactions.

The primary key is the reading identity, so ``INSERT OR IGNORE`` makes replays free. A small
``latest`` table keeps the newest reading per series, so the live page never scans history.
"""

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from fabcity.errors import StorageUnavailable
from fabcity.reading import Reading
from hub.storage.base import ReadingQuery, Storage

__all__ = ["SqliteStorage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, flags TEXT,
    PRIMARY KEY (site, device, sensor, metric, ts_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest (
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, flags TEXT,
    PRIMARY KEY (site, device, sensor, metric)
) WITHOUT ROWID;
"""

_INSERT = "INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_LATEST = """
INSERT INTO latest VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (site, device, sensor, metric) DO UPDATE SET
    ts_ms = excluded.ts_ms, value = excluded.value, unit = excluded.unit, flags = excluded.flags
WHERE excluded.ts_ms >= latest.ts_ms
"""
_AGGREGATES = {"mean": "AVG(value)", "min": "MIN(value)", "max": "MAX(value)"}
_COLUMNS = "site, device, sensor, metric"


def _row(r: Reading) -> tuple[str, str, str, str, int, float, str, str | None]:
    return (r.site, r.device, r.sensor, r.metric, r.ts_ms, r.value, r.unit or "",
            ",".join(r.flags) or None)


def _reading(row: sqlite3.Row | tuple) -> Reading:  # type: ignore[type-arg]
    site, device, sensor, metric, ts_ms, value, unit, flags = row
    return Reading(site, device, sensor, metric, value, int(ts_ms), unit,
                   tuple(flags.split(",")) if flags else ())


class SqliteStorage(Storage):
    """Readings in one SQLite file; safe to share between the ingest thread and the API."""

    def __init__(
        self,
        path: str | Path = "fabcity-hub.db",
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._closed = False
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StorageUnavailable("storage is closed")
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def write(self, readings: Sequence[Reading]) -> int:
        if not readings:
            return 0
        newest: dict[tuple[str, str, str, str], Reading] = {}
        for r in readings:
            key = (r.site, r.device, r.sensor, r.metric)
            current = newest.get(key)
            if current is None or r.ts_ms >= current.ts_ms:
                newest[key] = r
        try:
            with self._write_lock:
                conn = self._conn()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    stored = conn.executemany(_INSERT, [_row(r) for r in readings]).rowcount
                    conn.executemany(_UPSERT_LATEST, [_row(r) for r in newest.values()])
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"SQLite write failed: {exc}") from exc
        return max(stored, 0)

    def _filters(self, **values: str | None) -> tuple[str, list[object]]:
        clauses, params = [], []
        for column, value in values.items():
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return (" AND ".join(clauses) or "1"), params

    def query(self, q: ReadingQuery) -> list[Reading]:
        where, params = self._filters(site=q.site, device=q.device, sensor=q.sensor,
                                      metric=q.metric)
        where += " AND ts_ms >= ? AND ts_ms < ?"
        params += [q.start_ms, q.end_ms]
        if q.every_ms is None:
            sql = (f"SELECT {_COLUMNS}, ts_ms, value, unit, flags FROM readings WHERE {where} "
                   f"ORDER BY {_COLUMNS}, ts_ms LIMIT ?")
        else:
            bucket = f"(ts_ms / {int(q.every_ms)}) * {int(q.every_ms)}"
            if q.agg == "last":
                # SQLite returns the bare columns of the row holding MAX(ts_ms).
                value, extra = "value", ", MAX(ts_ms)"
            else:
                value, extra = _AGGREGATES[q.agg], ""
            sql = (f"SELECT {_COLUMNS}, {bucket} AS bucket, {value}, unit, NULL{extra} "
                   f"FROM readings WHERE {where} GROUP BY {_COLUMNS}, bucket "
                   f"ORDER BY {_COLUMNS}, bucket LIMIT ?")
        params.append(q.limit)
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"SQLite query failed: {exc}") from exc
        return [_reading(row[:8]) for row in rows]

    def latest(
        self, site: str | None = None, device: str | None = None, metric: str | None = None
    ) -> list[Reading]:
        where, params = self._filters(site=site, device=device, metric=metric)
        sql = (f"SELECT {_COLUMNS}, ts_ms, value, unit, flags FROM latest WHERE {where} "
               f"ORDER BY {_COLUMNS}")
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"SQLite query failed: {exc}") from exc
        return [_reading(row) for row in rows]

    def count(self) -> int:
        """Number of stored readings (tests and benchmarks)."""
        return int(self._conn().execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
