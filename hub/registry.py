"""The device registry: which devices exist, whether they are online, when last seen.

Fed by the retained ``status`` and ``meta`` topics and by every stored batch; kept in a small
SQLite file whatever the storage back-end, so the API answers without touching the time-series
store. Status and meta are validated once, on arrival, and their models kept in memory: the
API reads them on every call and must not parse them again each time.

Several processes may share the file (WAL): ingest workers write it, ``fabcity hub api``
processes read it. A reader notices another process's commits by SQLite's ``data_version``
and decodes again only the status and meta whose JSON changed.
"""

import logging
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fabcity.device import DeviceMeta, Status
from fabcity.errors import BadReading
from fabcity.logs import rate_limited

__all__ = ["DeviceRecord", "DeviceRegistry"]

log = rate_limited(logging.getLogger(__name__))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    site TEXT NOT NULL, device TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',
    status_json TEXT, status_ms INTEGER,
    meta_json TEXT,
    last_seen_ms INTEGER,
    PRIMARY KEY (site, device)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What the hub knows of one device; ``status`` and ``meta`` are shared, read-only."""

    site: str
    device: str
    state: str
    status: Status | None
    meta: DeviceMeta | None
    last_seen_ms: int | None


class DeviceRegistry:
    """Thread-safe registry in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                     timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._status: dict[tuple[str, str], Status] = {}
        self._meta: dict[tuple[str, str], DeviceMeta] = {}
        #: The JSON each decoded model came from: what a reload compares.
        self._json: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self._version = self._data_version()
        self._load()

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _load(self) -> None:
        """Decode what is stored and not decoded yet; a row that no longer validates is
        skipped (and logged once per process)."""
        rows = self._conn.execute(
            "SELECT site, device, status_json, meta_json FROM devices "
            "WHERE status_json IS NOT NULL OR meta_json IS NOT NULL").fetchall()
        for key in self._json.keys() - {(site, device) for site, device, _s, _m in rows}:
            del self._json[key]  # both cleared since (an emptied retained meta)
            self._status.pop(key, None)
            self._meta.pop(key, None)
        for site, device, status_json, meta_json in rows:
            key = (site, device)
            if self._json.get(key) == (status_json, meta_json):
                continue
            self._json[key] = (status_json, meta_json)
            self._status.pop(key, None)
            self._meta.pop(key, None)
            try:
                if status_json:
                    self._status[key] = Status.model_validate_json(status_json)
                if meta_json:
                    self._meta[key] = DeviceMeta.model_validate_json(meta_json)
            except ValueError as exc:  # stored before today's limits
                log.warning("device %s/%s: stored status or meta no longer valid, ignored: "
                            "%s", site, device, str(exc).splitlines()[0])

    def _refresh(self) -> None:
        """Pick up what other processes committed since the last look (call under the lock)."""
        version = self._data_version()
        if version != self._version:
            self._version = version
            self._load()

    def _upsert(self, site: str, device: str, sets: str, params: list[object]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO devices (site, device) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (site, device),
            )
            self._conn.execute(f"UPDATE devices SET {sets} WHERE site = ? AND device = ?",
                               [*params, site, device])

    def set_status(self, site: str, device: str, status: Status, received_ms: int) -> None:
        """Record a status message (the last will's ``offline`` included)."""
        self._upsert(site, device, "state = ?, status_json = ?, status_ms = ?, "
                     "last_seen_ms = MAX(COALESCE(last_seen_ms, 0), ?)",
                     [status.state, _json(status), received_ms, received_ms])
        self._status[(site, device)] = status

    def set_meta(self, site: str, device: str, meta: DeviceMeta | None) -> None:
        """Record a device description; ``None`` clears it (an emptied retained message)."""
        payload = _json(meta) if meta is not None else None
        self._upsert(site, device, "meta_json = ?", [payload])
        if meta is None:
            self._meta.pop((site, device), None)
        else:
            self._meta[(site, device)] = meta

    def seen(self, last_seen: Mapping[tuple[str, str], int]) -> None:
        """Mark devices as heard from at the given times (one call per stored batch)."""
        if not last_seen:
            return
        rows = [(site, device, ts) for (site, device), ts in last_seen.items()]
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT INTO devices (site, device, last_seen_ms) VALUES (?, ?, ?) "
                "ON CONFLICT DO UPDATE SET last_seen_ms = "
                "MAX(COALESCE(last_seen_ms, 0), excluded.last_seen_ms)",
                rows,
            )
            self._conn.execute("COMMIT")

    def devices(self, site: str | None = None) -> list[DeviceRecord]:
        """Every known device, optionally of one site, ordered by site then device."""
        sql = "SELECT site, device, state, last_seen_ms FROM devices"
        params: list[object] = []
        if site is not None:
            sql += " WHERE site = ?"
            params.append(site)
        with self._lock:
            self._refresh()
            rows = self._conn.execute(sql + " ORDER BY site, device", params).fetchall()
            status, meta = self._status, self._meta
            return [DeviceRecord(s, d, state, status.get((s, d)), meta.get((s, d)), seen)
                    for s, d, state, seen in rows]

    def close(self) -> None:
        """Close the database; safe to call twice."""
        with self._lock:
            self._conn.close()


def _json(message: Status | DeviceMeta) -> str:
    """Compact JSON of a decoded message; decoding already proved it encodes."""
    try:
        return message.model_dump_json(exclude_none=True)
    except ValueError as exc:  # a caller that skipped decode_status/decode_meta
        raise BadReading("bad_json", f"cannot store {type(message).__name__}: {exc}") from None
