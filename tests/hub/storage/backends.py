"""How the tests open each storage back-end against its real server.

Every factory takes the test's temporary directory, the session's servers and a name unique
to the test (a database or bucket of its own), and returns an open :class:`Storage`.
"""

import hashlib
import re
from pathlib import Path

from hub.storage.influxdb1 import InfluxDB1Storage
from hub.storage.sqlite import SqliteStorage
from tests.servers import InfluxDB1

__all__ = ["open_influxdb1", "open_sqlite"]


def open_sqlite(tmp_path: Path, name: str, **options: object) -> SqliteStorage:
    """SQLite in the test's temporary directory."""
    path = options.pop("path", tmp_path / f"{name}.db")
    return SqliteStorage(path, synchronous="normal", **options)  # type: ignore[arg-type]


def influx_name(name: str) -> str:
    """``name`` as a valid InfluxDB database name (at most 64 of ``[A-Za-z0-9_-]``)."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if len(clean) > 64:
        clean = clean[:55] + "_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return clean


def open_influxdb1(server: InfluxDB1, name: str, **options: object) -> InfluxDB1Storage:
    """InfluxDB 1.x: a database of the test's own on the session's server."""
    return InfluxDB1Storage(url=server.url, database=influx_name(name), **options)  # type: ignore[arg-type]
