"""SQLite storage, the embedded default: one file, WAL, batched transactions.

Layout: a ``series`` row per (site, device, sensor, metric) with its unit, and narrow
``points`` keyed by (series, ts_ms): integer keys keep inserts fast and the file small on an
SD card. The primary key is the reading identity, so ``INSERT OR IGNORE`` makes replays free.
``latest`` keeps the newest point per series for the live page; the ``readings`` view joins it
all back for people exploring the file with ``sqlite3``.
"""

import contextlib
import math
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field

from fabcity.errors import StorageUnavailable
from fabcity.reading import Reading
from hub.storage.base import (
    HOUR_MS,
    MINUTE_MS,
    SUM_SCALE,
    BucketStats,
    ReadingQuery,
    RollupValues,
    SeriesPoints,
    StatsRow,
    Storage,
    StorageOptions,
    retention_ms,
)
from hub.storage.sqlite_guard import FileIdentity, cache_kib, describe_error

__all__ = ["SqliteOptions", "SqliteStorage"]

SCHEMA_VERSION = 1
# Page caches: the writer's helps inserts into a large table (1/64 of the memory, 8..64 MiB);
# each reader's is smaller (1/256, 2..16 MiB): readers share the OS page cache anyway.
WRITE_CACHE_KIB = cache_kib(64, 8, 64)
READ_CACHE_KIB = cache_kib(256, 2, 16)
READ_CONNECTIONS = 4

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL,
    unit TEXT NOT NULL,
    UNIQUE (site, device, sensor, metric)
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL, flags TEXT,
    PRIMARY KEY (series, ts_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest (
    series INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, value REAL NOT NULL, flags TEXT
);
CREATE TABLE IF NOT EXISTS rollups (
    resolution_ms INTEGER NOT NULL, series INTEGER NOT NULL, start_ms INTEGER NOT NULL,
    count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
    first REAL NOT NULL, last REAL NOT NULL, increase REAL NOT NULL,
    PRIMARY KEY (resolution_ms, series, start_ms)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS readings AS
    SELECT s.site, s.device, s.sensor, s.metric, p.ts_ms, p.value, s.unit, p.flags
    FROM points p JOIN series s ON s.id = p.series;
PRAGMA user_version = {SCHEMA_VERSION};
"""

POINTS_PER_INSERT = 512  # rows per INSERT statement (2,048 parameters, SQLite allows 32,766)
_INSERT_ROWS = {rows: "INSERT OR IGNORE INTO points VALUES " + ",".join(["(?,?,?,?)"] * rows)
                for rows in (2**i for i in range(POINTS_PER_INSERT.bit_length()))}
_UPSERT_LATEST = """
INSERT INTO latest VALUES (?, ?, ?, ?)
ON CONFLICT (series) DO UPDATE SET
    ts_ms = excluded.ts_ms, value = excluded.value, flags = excluded.flags
WHERE excluded.ts_ms >= latest.ts_ms
"""
_UPSERT_SERIES = """
INSERT INTO series (site, device, sensor, metric, unit) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (site, device, sensor, metric) DO UPDATE SET unit = excluded.unit
RETURNING id
"""
_NAMES = "s.site, s.device, s.sensor, s.metric"
# Per series and bucket: count, sum, min, max, first, last and the counter rise between
# consecutive points inside the bucket (a drop is a reset: the value after it counts).
# ``CROSS JOIN`` keeps ``series`` the outer loop, so each series' points are found by the
# primary key (series, ts_ms); with a plain JOIN and no series filter (the rollup worker's
# query) SQLite scanned the whole points table for every window. Rollups alike.
_STATS = """
SELECT {names}, s.unit, b.bucket, b.n, b.total, b.lo, b.hi, b.first, b.last, b.rise
FROM (
    SELECT series, bucket, COUNT(*) AS n, TOTAL(value) AS total, MIN(value) AS lo,
           MAX(value) AS hi, MAX(CASE WHEN rn = 1 THEN value END) AS first,
           MAX(CASE WHEN rn = n_in THEN value END) AS last,
           TOTAL(CASE WHEN prev IS NULL THEN 0 WHEN value >= prev THEN value - prev
                      ELSE value END) AS rise
    FROM (
        SELECT p.series, p.value, p.ts_ms / {every} * {every} AS bucket,
               LAG(p.value) OVER w AS prev, ROW_NUMBER() OVER w AS rn,
               COUNT(*) OVER (PARTITION BY p.series, p.ts_ms / {every}) AS n_in
        FROM series s CROSS JOIN points p ON p.series = s.id
        WHERE {where}
        WINDOW w AS (PARTITION BY p.series, p.ts_ms / {every} ORDER BY p.ts_ms)
    )
    GROUP BY series, bucket
) b JOIN series s ON s.id = b.series
ORDER BY {names}, b.bucket
"""
# Reads return the series id, not its names: five strings per row cost more than the row
# (``SqliteStorage._names`` puts them back, one tuple of names per series).
_READ_ROLLUP = """
SELECT r.series, r.start_ms, r.count, r.sum, r.min, r.max, r.first, r.last, r.increase
FROM series s CROSS JOIN rollups r ON r.series = s.id
WHERE r.resolution_ms = ? AND {where}
ORDER BY {names}, r.start_ms
"""
# The value of each aggregate a rollup row answers alone, as buckets.value_of computes it
# (IEEE doubles both): a mean whose sum overflowed (``sum - sum`` is NaN, which SQLite makes
# NULL) averages the extremes instead. ``increase`` needs the bucket before: not here.
_ROLLUP_VALUE = {
    "mean": "CASE WHEN r.sum - r.sum = 0 THEN r.sum / r.count ELSE r.min / 2 + r.max / 2 END",
    "count": "CAST(r.count AS REAL)",
    **{field: f"r.{field}" for field in ("sum", "min", "max", "first", "last")},
}
_ROLLUP_VALUES = """
SELECT r.series, r.start_ms, {value}
FROM series s CROSS JOIN rollups r ON r.series = s.id
WHERE r.resolution_ms = ? AND {where}
ORDER BY {names}, r.start_ms
LIMIT ?
"""
_SCALED_SUM = ("SELECT TOTAL(p.value / {scale}) FROM series s CROSS JOIN points p "
               "ON p.series = s.id WHERE s.site = ? AND s.device = ? AND s.sensor = ? "
               "AND s.metric = ? AND p.ts_ms >= ? AND p.ts_ms < ?")
_SERIES_ID_UNIT = ("SELECT id, unit FROM series WHERE site = ? AND device = ? AND sensor = ? "
                   "AND metric = ?")
_SERIES_POINTS = ("SELECT ts_ms, value, flags FROM points WHERE series = ? AND ts_ms >= ? "
                  "AND ts_ms < ? ORDER BY ts_ms LIMIT ?")

SeriesKey = tuple[str, str, str, str]
T = TypeVar("T")
Point = tuple[int, int, float, str | None]  # (series, ts_ms, value, flags)


_new_tuple = tuple.__new__


def _insert_points(conn: sqlite3.Connection, flat: list[object]) -> int:
    """Insert the points of ``flat`` (four parameters a row) with multi-row INSERTs; how many
    were new.

    One statement step per ``POINTS_PER_INSERT`` rows instead of one per row: the sqlite3
    module binds the parameters in C and lets go of the GIL once per step, so decoding goes on
    in the other threads while SQLite inserts. The rest is cut into powers of two, so every
    statement this prepares stays in the connection's statement cache.
    """
    rows, stored, at = len(flat) // 4, 0, 0
    size = POINTS_PER_INSERT
    while rows:
        while size > rows:
            size //= 2
        for _ in range(rows // size):
            stored += conn.execute(_INSERT_ROWS[size], flat[at:at + 4 * size]).rowcount
            at += 4 * size
        rows %= size
    return stored


def _reading(row: tuple) -> Reading:  # type: ignore[type-arg]
    """A stored row as a reading, without checking it again: every point was a checked
    :class:`Reading` when written (``value`` is a REAL column, ``ts_ms`` an INTEGER one), and
    the checks took two thirds of the time of a 10,000-point read."""
    site, device, sensor, metric, ts_ms, value, unit, flags = row[:8]
    return _new_tuple(Reading, (site, device, sensor, metric, value, ts_ms, unit,
                                tuple(flags.split(",")) if flags else ()))


def _stats(row: tuple) -> BucketStats:  # type: ignore[type-arg]
    return BucketStats(*row)


def _storable(value: float) -> float:
    """SQLite stores NaN as NULL, which the NOT NULL rollup columns refuse: a sum or rise
    beyond the float range is kept as infinity instead (left out of answers all the same)."""
    return math.inf if math.isnan(value) else value


class SqliteOptions(StorageOptions):
    """``[storage]`` keys of the ``sqlite`` back-end."""

    path: Path = Path("fabcity-hub.db")
    synchronous: Literal["full", "normal"] = "full"
    read_connections: int = Field(READ_CONNECTIONS, ge=1, le=64,
                                  description="connections the API reads through")


class SqliteStorage(Storage):
    """Readings in one SQLite file; safe to share between the ingest thread and the API.

    Writes go through one connection of their own, under a lock; reads borrow one of a small
    pool of connections (WAL: readers never wait for the writer, nor it for them). Before and
    after every write transaction the file's identity is checked (:mod:`.sqlite_guard`): once
    the path names another file, or none, every write fails until an operator acts.
    """

    Options = SqliteOptions

    def __init__(
        self,
        path: str | Path = "fabcity-hub.db",
        synchronous: Literal["full", "normal"] = "full",
        retention_raw: str = "inf",
        retention_1m: str = "inf",
        retention_1h: str = "inf",
        read_connections: int = READ_CONNECTIONS,
    ) -> None:
        self.path = Path(path)
        self._retention_ms = {0: retention_ms(retention_raw), MINUTE_MS: retention_ms(retention_1m),
                              HOUR_MS: retention_ms(retention_1h)}
        self._synchronous = synchronous.upper()
        self._write_lock = threading.Lock()
        self._closed = False
        self._lost: str | None = None  # why the file can no longer be trusted, for good
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._reader_slots = threading.BoundedSemaphore(read_connections)
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._series: dict[SeriesKey, tuple[int, str]] = {}  # key -> (id, unit)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect(WRITE_CACHE_KIB)
            self._writer.executescript(_SCHEMA)
            self._identity = FileIdentity(self.path)
            self._identity.note_wal()
            for series_id, *key, unit in self._writer.execute(
                "SELECT id, site, device, sensor, metric, unit FROM series"
            ):
                self._series[tuple(key)] = (series_id, unit)
        except (OSError, sqlite3.Error) as exc:
            self.close()
            cause = describe_error(exc, self.path, "open") if isinstance(exc, sqlite3.Error) \
                else str(exc)
            raise StorageUnavailable(f"cannot open SQLite database {self.path}: {cause}") from exc

    def describe(self) -> str:
        return f"sqlite:{self.path.resolve()}"

    def _connect(self, cache: int) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                               isolation_level=None)
        with self._connections_lock:
            self._connections.append(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA cache_size=-{cache}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        """The write connection (tests and benchmarks poke at the file through it)."""
        if self._closed:
            raise StorageUnavailable("storage is closed")
        return self._writer

    def _check_file(self) -> None:
        """Refuse to write once the path no longer names the file we opened."""
        if self._lost is None:
            self._lost = self._identity.problem()
            if self._lost is not None:
                # Fold the log into the orphaned file: /proc/<pid>/fd/<n> is then all of it.
                with contextlib.suppress(sqlite3.Error):
                    self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if self._lost is not None:
            raise StorageUnavailable(self._lost)

    def _transaction(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction on a file that is still ours."""
        with self._write_lock:
            conn = self._conn()
            self._check_file()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                finally:
                    # SQLite rolls back by itself on a full disk or an I/O error: a second
                    # ROLLBACK would hide the cause behind "no transaction is active".
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                self._check_file()  # a vanished file explains the error best
                raise StorageUnavailable(describe_error(exc, self.path, doing)) from exc
            self._check_file()  # committed into the file the path names: only now a success
            return result

    def _points(self, conn: sqlite3.Connection, readings: Sequence[Reading]) -> tuple[
        list[object], dict[int, Point], dict[SeriesKey, tuple[int, str]]
    ]:
        """The rows to insert as one flat list of parameters, the newest row per series, and
        the series this transaction creates (or whose unit it changes), to be cached only
        once it commits.

        One pass over the batch: this runs for every reading the hub stores.
        """
        known = self._series
        fresh: dict[SeriesKey, tuple[int, str]] = {}
        flat: list[object] = []
        newest: dict[int, Point] = {}
        for r in readings:
            key = r[:4]  # (site, device, sensor, metric): a Reading is a named tuple
            unit = r.unit
            entry = known.get(key)
            if entry is None or entry[1] != unit:
                entry = fresh.get(key)
                if entry is None or entry[1] != unit:
                    series_id = conn.execute(_UPSERT_SERIES, (*key, unit)).fetchone()[0]
                    entry = fresh[key] = (series_id, unit or "")
            point = (entry[0], r.ts_ms, r.value, ",".join(r.flags) if r.flags else None)
            flat += point
            current = newest.get(point[0])
            if current is None or point[1] >= current[1]:
                newest[point[0]] = point
        return flat, newest, fresh

    def write(self, readings: Sequence[Reading]) -> int:
        if not readings:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            flat, newest, fresh = self._points(conn, readings)
            stored = _insert_points(conn, flat)
            conn.executemany(_UPSERT_LATEST, newest.values())
            pending.update(fresh)
            return stored

        pending: dict[SeriesKey, tuple[int, str]] = {}
        stored = self._transaction("write", insert)
        self._series.update(pending)  # cached only once committed
        return stored

    @staticmethod
    def _filters(**values: str | None) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        for column, value in values.items():
            if value is not None:
                clauses.append(f"s.{column} = ?")
                params.append(value)
        return (" AND ".join(clauses) or "1"), params

    def _select(self, sql: str, params: Sequence[object]) -> list[tuple]:  # type: ignore[type-arg]
        """Run a query on a pooled read connection (waiting for one while all are busy)."""
        return self._on_reader(lambda conn: conn.execute(sql, params).fetchall())

    def _on_reader(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on a pooled read connection (waiting for one while all are busy)."""
        self._reader_slots.acquire()
        try:
            if self._closed:
                raise StorageUnavailable("storage is closed")
            try:
                conn = self._readers.get_nowait()
            except queue.Empty:
                conn = self._connect(READ_CACHE_KIB)
            try:
                return work(conn)
            finally:
                self._readers.put(conn)
        except sqlite3.Error as exc:
            raise StorageUnavailable(describe_error(exc, self.path, "query")) from exc
        finally:
            self._reader_slots.release()

    def _where(self, q: ReadingQuery, ts: str) -> tuple[str, list[object]]:
        where, params = self._filters(site=q.site, device=q.device, sensor=q.sensor,
                                      metric=q.metric)
        return f"{where} AND {ts} >= ? AND {ts} < ?", [*params, q.start_ms, q.end_ms]

    def _names(self, q: ReadingQuery) -> dict[int, tuple[str, str, str, str, str | None]]:
        """Series id -> (site, device, sensor, metric, unit) of the series ``q`` selects.
        Asked after the rows: a series is written before its points and never deleted, so
        every id those rows hold is here."""
        where, params = self._filters(site=q.site, device=q.device, sensor=q.sensor,
                                      metric=q.metric)
        return {row[0]: row[1:] for row in self._select(
            f"SELECT s.id, {_NAMES}, s.unit FROM series s WHERE {where}", params)}

    def raw(self, q: ReadingQuery) -> list[Reading]:
        where, params = self._where(q, "p.ts_ms")
        sql = (f"SELECT p.series, p.ts_ms, p.value, p.flags "
               f"FROM series s CROSS JOIN points p ON p.series = s.id WHERE {where} "
               f"ORDER BY {_NAMES}, p.ts_ms LIMIT ?")
        rows = self._select(sql, [*params, q.limit])
        if not rows:
            return []
        names = self._names(q)
        out: list[Reading] = []
        add = out.append
        current = -1
        site = device = sensor = metric = ""
        unit: str | None = None
        for series, ts_ms, value, flags in rows:
            if series != current:
                current = series
                site, device, sensor, metric, unit = names[series]
            # Built without checks (see _reading): the points were checked readings.
            add(_new_tuple(Reading, (site, device, sensor, metric, value, ts_ms, unit,
                                     tuple(flags.split(",")) if flags else ())))
        return out

    def series_points(self, q: ReadingQuery) -> SeriesPoints:
        """One series by the primary key (series, ts_ms) alone: no join, no names per row."""
        key = (q.site, q.device, q.sensor, q.metric)
        if None in key:
            raise ValueError("series_points needs site, device, sensor and metric")

        def read(conn: sqlite3.Connection) -> SeriesPoints:
            found = conn.execute(_SERIES_ID_UNIT, key).fetchone()
            if found is None:
                return SeriesPoints(None, [])
            return SeriesPoints(found[1], conn.execute(
                _SERIES_POINTS, (found[0], q.start_ms, q.end_ms, q.limit)).fetchall())
        return self._on_reader(read)

    def stats(self, q: ReadingQuery) -> list[BucketStats]:
        if q.every_ms is None or q.every_ms <= 0:
            raise ValueError("stats needs every_ms > 0")
        where, params = self._where(q, "p.ts_ms")
        sql = _STATS.format(names=_NAMES, every=int(q.every_ms), where=where)
        rows = [_stats(row) for row in self._select(sql, params)]
        for row in rows:
            if math.isinf(row.sum):  # overflowed while adding: add again, scaled (SUM_SCALE)
                row.sum = self._scaled_sum(row, q) * SUM_SCALE
        return rows

    def _scaled_sum(self, row: BucketStats, q: ReadingQuery) -> float:
        """The sum of one bucket's points divided by :data:`SUM_SCALE`, in time order."""
        assert q.every_ms is not None
        start = max(row.start_ms, q.start_ms)
        end = min(row.start_ms + q.every_ms, q.end_ms)
        found = self._select(_SCALED_SUM.format(scale=repr(SUM_SCALE)),
                             (*row.key, start, end))
        return float(found[0][0])

    def _series_id(self, conn: sqlite3.Connection, key: SeriesKey) -> int:
        """The id of a stored series; one another process (an ingest worker) created is
        looked up in the file, as this process never wrote it."""
        entry = self._series.get(key)
        if entry is not None:
            return entry[0]
        row = conn.execute("SELECT id FROM series WHERE site = ? AND device = ? AND sensor = ? "
                           "AND metric = ?", key).fetchone()
        if row is None:
            raise KeyError(f"no series {key}")
        return int(row[0])

    def write_rollup(self, resolution_ms: int, rows: Sequence[BucketStats]) -> None:
        if not rows:
            return

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(resolution_ms, self._series_id(conn, r.key), r.start_ms, r.count,
                  _storable(r.sum), r.min, r.max, r.first, r.last, _storable(r.increase))
                 for r in rows])

        self._transaction("rollup write", insert)

    def _rollup_rows(self, resolution_ms: int, q: ReadingQuery) -> tuple[
            list[tuple], dict[int, tuple[str, str, str, str, str | None]]]:  # type: ignore[type-arg]
        """Rollup rows by series id (and the names of the ids). Stops after the rows
        ``q.limit`` buckets can use: a day of 1-minute buckets for 100 series is 144,000
        rows, of which a 10,000-reading answer needs 10,000."""
        where, params = self._where(q, "r.start_ms")
        per_bucket = max(1, (q.every_ms or resolution_ms) // resolution_ms)
        cap = min(q.limit * per_bucket, 2**62)
        sql = _READ_ROLLUP.format(names=_NAMES, where=where) + " LIMIT ?"
        rows = self._select(sql, [resolution_ms, *params, cap])
        return rows, (self._names(q) if rows else {})

    def read_rollup(self, resolution_ms: int, q: ReadingQuery) -> list[BucketStats]:
        rows, names = self._rollup_rows(resolution_ms, q)
        return [BucketStats(*names[row[0]], *row[1:]) for row in rows]

    def read_rollup_rows(self, resolution_ms: int, q: ReadingQuery) -> list[StatsRow]:
        rows, names = self._rollup_rows(resolution_ms, q)
        return [names[row[0]] + row[1:] for row in rows]

    def rollup_values(self, resolution_ms: int, q: ReadingQuery) -> RollupValues | None:
        """Rollup rows to values in the query itself: three columns per row, no names."""
        value = _ROLLUP_VALUE.get(q.agg)
        if value is None:
            return None
        where, params = self._where(q, "r.start_ms")
        sql = _ROLLUP_VALUES.format(value=value, where=where, names=_NAMES)
        rows = self._select(sql, [resolution_ms, *params, min(q.limit, 2**62)])
        return RollupValues(self._names(q) if rows else {}, rows)

    def first_ms(self) -> int | None:
        row = self._select("SELECT MIN((SELECT MIN(ts_ms) FROM points WHERE series = s.id)) "
                           "FROM series s", ())
        return None if not row or row[0][0] is None else int(row[0][0])

    def expire(self, now_ms: int) -> int:
        """Delete raw points and rollups older than their retention."""
        removed = 0
        for resolution, keep_ms in self._retention_ms.items():
            if keep_ms is None:
                continue
            cutoff = now_ms - keep_ms

            def delete(conn: sqlite3.Connection, res: int = resolution, cut: int = cutoff) -> int:
                if res == 0:
                    cursor = conn.execute("DELETE FROM points WHERE ts_ms < ?", (cut,))
                else:
                    cursor = conn.execute(
                        "DELETE FROM rollups WHERE resolution_ms = ? AND start_ms < ?", (res, cut))
                return max(cursor.rowcount, 0)

            removed += self._transaction("expiry", delete)
        return removed

    def latest(
        self, site: str | None = None, device: str | None = None, metric: str | None = None
    ) -> list[Reading]:
        where, params = self._filters(site=site, device=device, metric=metric)
        sql = (f"SELECT {_NAMES}, l.ts_ms, l.value, s.unit, l.flags "
               f"FROM series s JOIN latest l ON l.series = s.id WHERE {where} "
               f"ORDER BY {_NAMES}")
        return [_reading(row) for row in self._select(sql, params)]

    def count(self) -> int:
        """Number of stored readings (tests and benchmarks)."""
        return int(self._select("SELECT COUNT(*) FROM points", ())[0][0])

    def health(self) -> str:
        """``ok``, or why writes stop: the file deleted or replaced (checked now)."""
        if self._closed:
            return "storage is closed"
        with self._write_lock:
            try:
                self._check_file()
            except StorageUnavailable as exc:
                return f"unavailable: {exc}"
        return "ok"

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        identity = getattr(self, "_identity", None)
        if identity is not None:
            identity.close()
