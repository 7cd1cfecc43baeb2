"""How the tests open each storage back-end against its real server.

Every factory takes the test's temporary directory, the session's servers and a name unique
to the test (a database or bucket of its own), and returns an open :class:`Storage`.
"""

import hashlib
import re
from pathlib import Path

from hub.storage.base import HOUR_MS, MINUTE_MS
from hub.storage.influxdb1 import InfluxDB1Storage
from hub.storage.influxdb2 import ROLLUP_RPS, InfluxDB2Storage
from hub.storage.sqlite import SqliteStorage
from tests.hub.storage.tee import InfluxTee
from tests.servers import InfluxDB1, VictoriaMetrics

__all__ = ["open_influxdb1", "open_influxdb2", "open_sqlite"]


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
    options.setdefault("url", server.url)
    return InfluxDB1Storage(database=influx_name(name), **options)  # type: ignore[arg-type]


class _TeedInfluxDB2Storage(InfluxDB2Storage):
    """The ``influxdb`` back-end behind a tee, which it stops when closed."""

    tee: InfluxTee

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.tee.stop()


def open_influxdb2(victoria: VictoriaMetrics, influx1: InfluxDB1, name: str,
                   **options: object) -> InfluxDB2Storage:
    """InfluxDB 2.x stand-in: writes go to VictoriaMetrics and InfluxDB 1.6 through a tee
    (:mod:`tests.hub.storage.tee`), reads come from InfluxDB 1.6; bucket = database = name."""
    bucket = influx_name(name)
    if "url" in options:  # a server of the test's own (an outage, a scripted answer): no tee
        return InfluxDB2Storage(token="test-token", org="fabcity", bucket=bucket,
                                database=bucket, **options)
    dbrp = {bucket: (bucket, "autogen")}
    for suffix, resolution_ms in (("1m", MINUTE_MS), ("1h", HOUR_MS)):
        rollup_bucket = options.get(f"rollup_bucket_{suffix}") or f"{bucket}_{suffix}"
        dbrp[str(rollup_bucket)] = (bucket, ROLLUP_RPS[resolution_ms])
    tee = InfluxTee(victoria.url, influx1.url, dbrp).start()
    try:
        options.setdefault("url", tee.url)
        storage = _TeedInfluxDB2Storage(token="test-token", org="fabcity",  # type: ignore[arg-type]
                                        bucket=bucket, database=bucket, **options)
    except BaseException:
        tee.stop()
        raise
    storage.tee = tee
    return storage
