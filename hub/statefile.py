"""The hub's state file: one small SQLite database for what the hub itself must remember.

Dead letters, rollup progress, forwarder cursors, device credentials and API keys each keep
a table there. Every one of them is written before an MQTT message is acked or a request is
answered, so the file is opened the same way everywhere: WAL, ``synchronous=FULL``.
"""

import sqlite3
from pathlib import Path

from fabcity.errors import StorageUnavailable

__all__ = ["open_state"]


def open_state(path: Path, schema: str, what: str = "the hub state file") -> sqlite3.Connection:
    """Open (creating it and its folder if needed) and apply ``schema``; a failure is
    :class:`StorageUnavailable` naming ``what`` and the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(schema)
    except (OSError, sqlite3.Error) as exc:
        raise StorageUnavailable(f"cannot open {what} {path}: {exc}") from exc
    return conn
