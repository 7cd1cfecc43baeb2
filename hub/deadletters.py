"""Dead letters: readings the storage back-end refused for good, kept with the reason.

A reading lands here when the back-end says retrying cannot help (an InfluxDB 400: a point
older than the retention policy, a field-type conflict with data written by another tool).
It is written here durably *before* its MQTT message is acked, so nothing refused is lost:
``fabcity hub dead-letters list`` shows them and ``replay`` tries them again once the cause is
fixed (a longer retention, the conflicting measurement dropped).
"""

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabcity.errors import ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading, now_ms
from hub.statefile import open_state
from hub.storage.base import Storage

__all__ = ["DeadLetter", "DeadLetters", "write_or_refuse"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL, reason TEXT NOT NULL,
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, metric TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, value REAL NOT NULL, unit TEXT, flags TEXT,
    UNIQUE (site, device, sensor, metric, ts_ms)
);
"""
Refusal = tuple[Reading, str]  # a refused reading and why


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused reading."""

    id: int
    at_ms: int
    reason: str
    reading: Reading


def write_or_refuse(storage: Storage, readings: Sequence[Reading]) -> tuple[int | None,
                                                                            list[Refusal]]:
    """Write ``readings``; when the back-end refuses some for good, split the batch until
    each refused reading is found. Returns (new readings or ``None`` if the back-end cannot
    tell, the refused readings with the reason). ``StorageUnavailable`` propagates: the
    caller retries the whole batch, which is idempotent."""
    try:
        return storage.write(readings), []
    except ReadingsRefused as exc:
        if len(readings) == 1:
            return 0, [(readings[0], exc.reason)]
    middle = len(readings) // 2
    first, refused_first = write_or_refuse(storage, readings[:middle])
    second, refused_second = write_or_refuse(storage, readings[middle:])
    stored = None if first is None or second is None else first + second
    return stored, refused_first + refused_second


class DeadLetters:
    """The dead-letter table, in the hub's state file (SQLite, synchronous=FULL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_state(self.path, _SCHEMA, "the dead-letter file")

    def add(self, refused: Sequence[Refusal]) -> None:
        """Keep refused readings durably (a reading refused again keeps its latest reason)."""
        if not refused:
            return
        at = now_ms()
        rows = [(at, reason, *r[:4], r.ts_ms, r.value, r.unit, ",".join(r.flags) or None)
                for r, reason in refused]
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT INTO dead_letters (at_ms, reason, site, device, sensor, metric,"
                        " ts_ms, value, unit, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (site, device, sensor, metric, ts_ms) DO UPDATE SET "
                        "at_ms = excluded.at_ms, reason = excluded.reason, "
                        "value = excluded.value, unit = excluded.unit, flags = excluded.flags",
                        rows)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot write dead letters to {self.path}: {exc}"
                                     ) from exc

    def count(self) -> int:
        """How many readings wait here."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def entries(self, limit: int | None = None, after_id: int = 0) -> list[DeadLetter]:
        """Dead letters in the order they came, ``limit`` at most, after ``after_id``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, at_ms, reason, site, device, sensor, metric, value, ts_ms, unit, "
                "flags FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, -1 if limit is None else limit)).fetchall()
        return [DeadLetter(at_id, at_ms, reason,
                           Reading(site, device, sensor, metric, value, ts_ms, unit,
                                   tuple(flags.split(",")) if flags else ()))
                for (at_id, at_ms, reason, site, device, sensor, metric, value, ts_ms, unit,
                     flags) in rows]

    def _chunks(self, size: int) -> Iterator[list[DeadLetter]]:
        after = 0
        while chunk := self.entries(size, after):
            yield chunk
            after = chunk[-1].id

    def replay(self, storage: Storage, chunk: int = 5_000) -> tuple[int, int]:
        """Write every dead letter to ``storage`` again; the stored ones leave, the ones
        refused again stay with the new reason. Returns (stored, still refused)."""
        stored = refused = 0
        for letters in self._chunks(chunk):
            _, again = write_or_refuse(storage, [letter.reading for letter in letters])
            still = {id(r) for r, _reason in again}
            done = [letter.id for letter in letters if id(letter.reading) not in still]
            self.add(again)
            with self._lock:
                self._conn.executemany("DELETE FROM dead_letters WHERE id = ?",
                                       [(i,) for i in done])
            stored += len(done)
            refused += len(again)
        return stored, refused

    def close(self) -> None:
        """Close the file; safe to call twice."""
        with self._lock:
            self._conn.close()
