"""The durable store-and-forward buffer: readings wait here until the next stage has them.

Two SQLite files hold the readings. A reading enters the *spool*, a small database in RAM
(``/dev/shm``: tmpfs), in one transaction: from then on it survives a SIGKILL of the agent,
since the kernel holds the file, but not a power cut. Readings still waiting after
``commit_interval_s`` move, in one transaction synced to the card (``synchronous =
"full"``), to the *store* on the SD card, which survives a power cut. Readings that leave
sooner (the broker acknowledged them) never touch the card, so with a reachable broker the
card sees almost no writes; a power cut loses at most the readings of the last
``commit_interval_s``. ``commit_interval_s = 0`` puts every batch straight into the store,
one synced transaction per ``put`` and per ``remove``.

Deletions from the store also wait for the next commit (one open transaction): a SIGKILL
before it only means those readings are sent again, which the hub stores once.

The buffer is bounded: when full it drops the oldest readings first and counts them in
``dropped``, which survives restarts. Ids rise for the buffer's whole life: they are handed
out from blocks reserved durably in the store, so neither a restart nor a power cut reuses one.
One process at a time opens a buffer.
"""

import atexit
import fcntl
import hashlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from fabcity.errors import ConfigError
from fabcity.logs import rate_limited
from fabcity.reading import Reading

__all__ = ["DEFAULT_SPOOL_DIR", "Buffer", "spool_path"]

log = rate_limited(logging.getLogger(__name__))  # per-message lines must not flood

#: RAM-backed on Linux (Raspberry Pi OS mounts a tmpfs there); kept across agent restarts.
DEFAULT_SPOOL_DIR = Path("/dev/shm")  # noqa: S108 (a fixed, per-buffer name, not a temp file)
ID_BLOCK = 100_000  # ids reserved per durable write

_INSERT = ("INSERT OR IGNORE INTO buffer (id, site, device, sensor, metric, value, unit, ts_ms,"
           " flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SELECT_ALL = ("SELECT id, site, device, sensor, metric, value, unit, ts_ms, flags FROM buffer"
               " ORDER BY id")
_SELECT = ("SELECT id, site, device, sensor, metric, value, unit, ts_ms, flags FROM buffer"
           " WHERE id > ? ORDER BY id LIMIT ?")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buffer (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL,
    value REAL NOT NULL, unit TEXT NOT NULL, ts_ms INTEGER NOT NULL, flags TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_SPOOL_SCHEMA = """
CREATE TABLE IF NOT EXISTS buffer (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL,
    value REAL NOT NULL, unit TEXT NOT NULL, ts_ms INTEGER NOT NULL, flags TEXT
);
"""
_Row = tuple[int, str, str, str, str, float, str, int, str | None]
_open_buffers: "weakref.WeakSet[Buffer]" = weakref.WeakSet()


@atexit.register
def _close_open_buffers() -> None:
    """A process that exits without closing its buffers still commits and removes its spools."""
    for buffer in list(_open_buffers):
        try:
            buffer.close()
        except (OSError, sqlite3.Error) as exc:
            log.error("buffer %s: cannot close at exit: %s", buffer.path, exc)


def spool_path(path: str | Path, spool_dir: str | Path | None = None) -> Path:
    """The spool file of the buffer at ``path``: named after the buffer's absolute path."""
    directory = Path(spool_dir) if spool_dir is not None else DEFAULT_SPOOL_DIR
    if spool_dir is None and not (directory.is_dir() and os.access(directory, os.W_OK)):
        directory = Path(path).parent  # no tmpfs: still safe against SIGKILL, not wear-free
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
    return directory / f"fabcity-edge-spool-{digest}.db"


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def _claim(path: Path) -> int:
    """Lock ``<path>.lock`` for this buffer's lifetime: two agents draining one buffer would
    send and delete each other's readings, and both would spool the same ids. The kernel
    releases the lock when the process dies, so a SIGKILLed agent never leaves it behind."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(f"buffer.path: {path} is in use by another buffer (process "
                          f"{owner}); give each agent its own buffer file") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class Buffer:
    """A bounded FIFO of readings, safe to share between threads."""

    def __init__(
        self,
        path: str | Path,
        max_readings: int = 1_000_000,
        synchronous: Literal["full", "normal"] = "full",
        commit_interval_s: float = 1.0,
        spool_dir: str | Path | None = None,
    ) -> None:
        if commit_interval_s < 0:
            raise ConfigError(f"buffer.commit_interval_s: must be >= 0, got {commit_interval_s}")
        self.path = Path(path)
        self.max_readings = max_readings
        self.commit_interval_s = commit_interval_s
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)  # the committer waits on it
        self._spool: sqlite3.Connection | None = None
        self.spool_path: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._claim = _claim(self.path)
            self._conn = _connect(self.path, synchronous.upper())
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"buffer.path: cannot open {self.path}: {exc}") from None
        if commit_interval_s > 0:
            self.spool_path = spool_path(self.path, spool_dir)
            try:
                self.spool_path.parent.mkdir(parents=True, exist_ok=True)
                self._spool = _connect(self.spool_path, "OFF")  # RAM: a sync buys nothing
                self._spool.executescript(_SPOOL_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(
                    f"buffer.spool_dir: cannot open {self.spool_path}: {exc}") from None
        self._in_txn = False  # the store has an open transaction, committed when due
        self._new_due = False  # a new deadline the committer may not know of yet
        self._txn_due = 0.0  # monotonic time by which it must commit
        self._puts: deque[tuple[int, float]] = deque()  # (last id, monotonic time) per put
        self._closed = False
        self._store_max = 0
        with self._lock:
            self._recover_spool()
            self._count = self._store_count() + self._spool_count()
            self._store_max = int(self._conn.execute(
                "SELECT COALESCE(MAX(id), 0) FROM buffer").fetchone()[0])
            self._dropped = self._counter("dropped")
            self._next_id = max(self._counter("ids_reserved"), self._store_max,
                                self._sequence()) + 1
            self._reserved = self._next_id - 1
        self._committer: threading.Thread | None = None
        if self._spool is not None:
            self._committer = threading.Thread(target=self._commit_when_due,
                                               name="buffer-commit", daemon=True)
            self._committer.start()
        _open_buffers.add(self)

    def __len__(self) -> int:
        return self._count

    @property
    def dropped(self) -> int:
        """Readings discarded because the buffer was full, since it was created."""
        return self._dropped

    def put(self, readings: Sequence[Reading]) -> None:
        """Append readings: safe from a SIGKILL on return, on the card within the interval.

        Drops the oldest readings if the buffer overflows.
        """
        if not readings:
            return
        with self._lock:
            self._reserve_ids(len(readings))
            first = self._next_id
            rows = [(first + i, r.site, r.device, r.sensor, r.metric, r.value, r.unit or "",
                     r.ts_ms, ",".join(r.flags) or None) for i, r in enumerate(readings)]
            self._next_id += len(rows)
            if self._spool is not None:
                self._spool.execute("BEGIN IMMEDIATE")
                try:
                    self._spool.executemany(_INSERT, rows)
                    self._spool.execute("COMMIT")
                except BaseException:
                    self._spool.execute("ROLLBACK")
                    raise
                self._new_due = self._new_due or not self._puts
                self._puts.append((rows[-1][0], time.monotonic()))
            else:
                self._begin()
                self._conn.executemany(_INSERT, rows)
                self._store_max = rows[-1][0]
            self._count += len(rows)
            overflow = self._count - self.max_readings
            if overflow > 0:
                self._drop_oldest(overflow)
            if self._spool is None:
                self._commit()
            self._wake_committer()

    def take(self, after_id: int, limit: int) -> list[tuple[int, Reading]]:
        """Up to ``limit`` oldest readings with an id above ``after_id``, with their ids."""
        with self._lock:
            # Every id in the store is below every id in the spool: the spool moves whole.
            rows = self._conn.execute(_SELECT, (after_id, limit)).fetchall()
            if self._spool is not None and len(rows) < limit:
                rows += self._spool.execute(_SELECT, (after_id, limit - len(rows))).fetchall()
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
        removed = 0
        with self._lock:
            if self._spool is not None:
                self._spool.execute("BEGIN IMMEDIATE")
                try:
                    for first, last in ranges:
                        removed += self._spool.execute(
                            "DELETE FROM buffer WHERE id BETWEEN ? AND ?", (first, last)).rowcount
                    self._spool.execute("COMMIT")
                except BaseException:
                    self._spool.execute("ROLLBACK")
                    raise
            in_store = [(first, last) for first, last in ranges if first <= self._store_max]
            if in_store:
                self._begin()
                for first, last in in_store:
                    removed += self._conn.execute(
                        "DELETE FROM buffer WHERE id BETWEEN ? AND ?", (first, last)).rowcount
                if self._spool is None:
                    self._commit()
                self._wake_committer()
            self._count -= removed
        return removed

    def close(self) -> None:
        """Commit what waits, close both files and delete the empty spool; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._due.notify()
        _open_buffers.discard(self)
        if self._committer is not None:
            self._committer.join(10)
        with self._lock:
            try:
                self._commit()
            finally:
                self._conn.close()
                if self._spool is not None:
                    self._spool.close()
                    if self.spool_path is not None:
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{self.spool_path}{suffix}").unlink(missing_ok=True)
                os.close(self._claim)  # last: the files are closed, another owner may come

    # Everything below runs with self._lock held.
    def _begin(self) -> None:
        if not self._in_txn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._in_txn = True
            self._txn_due = time.monotonic() + self.commit_interval_s
            self._new_due = True

    def _wake_committer(self) -> None:
        """Wake the committer only for a deadline it may not know: about once per interval,
        not once per put. A later deadline than the one it sleeps towards needs no wake-up:
        it looks again when it wakes."""
        if self._new_due:
            self._new_due = False
            self._due.notify()

    def _commit(self) -> None:
        """One transaction: spooled readings into the store, pending deletes; then empty
        the spool. The store commits first, so a SIGKILL in between leaves a reading in
        both files (merged on the next open), never in neither."""
        rows: list[_Row] = []
        if self._spool is not None:
            rows = self._spool.execute(_SELECT_ALL).fetchall()
        if rows:
            self._begin()
            self._conn.executemany(_INSERT, rows)
        if self._in_txn:
            self._in_txn = False
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback()
                raise
        if rows:
            self._store_max = max(self._store_max, rows[-1][0])
            assert self._spool is not None
            self._spool.execute("DELETE FROM buffer")
        self._puts.clear()

    def _rollback(self) -> None:
        """A failed commit: the store is as it was; count again what the files hold."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._in_txn = False
        self._count = self._store_count() + self._spool_count()
        self._dropped = self._counter("dropped")

    def _next_due(self) -> float | None:
        """When the next commit is due: the open transaction's deadline, or the oldest
        spooled reading's put time plus the interval."""
        due = self._txn_due if self._in_txn else None
        if self._spool is not None and self._puts:
            oldest = self._spool.execute("SELECT MIN(id) FROM buffer").fetchone()[0]
            while self._puts and (oldest is None or self._puts[0][0] < oldest):
                self._puts.popleft()  # every reading of that put has left already
            if self._puts:
                spool_due = self._puts[0][1] + self.commit_interval_s
                due = spool_due if due is None else min(due, spool_due)
        return due

    def _commit_when_due(self) -> None:
        with self._lock:
            while not self._closed:
                due = self._next_due()
                now = time.monotonic()
                if due is None or due > now:
                    self._due.wait(None if due is None else due - now)
                    continue
                try:
                    self._commit()
                except sqlite3.Error as exc:
                    log.error("buffer: cannot commit to %s: %s; retrying", self.path, exc)
                    self._due.wait(max(self.commit_interval_s, 1.0))

    def _drop_oldest(self, overflow: int) -> None:
        self._begin()
        deleted = self._conn.execute(
            "DELETE FROM buffer WHERE id IN (SELECT id FROM buffer ORDER BY id LIMIT ?)",
            (overflow,)).rowcount
        if deleted < overflow and self._spool is not None:
            deleted += self._spool.execute(
                "DELETE FROM buffer WHERE id IN (SELECT id FROM buffer ORDER BY id LIMIT ?)",
                (overflow - deleted,)).rowcount
        self._conn.execute(
            "INSERT INTO counters VALUES ('dropped', ?) "
            "ON CONFLICT DO UPDATE SET value = value + excluded.value", (deleted,))
        self._count -= deleted
        self._dropped += deleted
        log.warning("buffer full (%d readings): dropped the %d oldest", self.max_readings,
                    deleted)

    def _reserve_ids(self, count: int) -> None:
        """Make sure ``count`` more ids are reserved durably before any is handed out."""
        if self._next_id + count - 1 <= self._reserved:
            return
        self._reserved = self._next_id + count - 1 + ID_BLOCK
        self._begin()
        self._conn.execute("INSERT INTO counters VALUES ('ids_reserved', ?) "
                           "ON CONFLICT DO UPDATE SET value = excluded.value", (self._reserved,))
        self._commit()

    def _recover_spool(self) -> None:
        """Readings spooled by a process that died: into the store first, as on commit."""
        if self._spool is not None and self._spool_count():
            self._commit()
            log.info("buffer: recovered readings spooled before the last exit")

    def _store_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM buffer").fetchone()[0])

    def _spool_count(self) -> int:
        if self._spool is None:
            return 0
        return int(self._spool.execute("SELECT COUNT(*) FROM buffer").fetchone()[0])

    def _counter(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _sequence(self) -> int:
        row = self._conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'buffer'").fetchone()
        return int(row[0]) if row else 0
