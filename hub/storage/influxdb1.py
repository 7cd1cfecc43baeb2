"""InfluxDB 1.x storage: line protocol POSTed to ``/write``, InfluxQL over ``/query``.

Raw readings go to the default retention policy ``rp_raw``; rollups of one minute and one
hour to ``rp_1m`` and ``rp_1h``. Their durations come from ``retention_*``: InfluxDB expires
data itself, so :meth:`expire` has nothing to do. A point with the same series and time
overwrites the stored one, which makes replays idempotent (and ``write`` unable to count
duplicates).
"""

import contextlib
import gzip as gzip_module
from collections.abc import Sequence
from typing import Annotated

import urllib3
from pydantic import Field, SecretStr

from fabcity.errors import ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading
from hub.storage.base import (
    HOUR_MS,
    MINUTE_MS,
    BucketStats,
    ReadingQuery,
    Storage,
    StorageOptions,
    retention_ms,
)
from hub.storage.influxhttp import error_text
from hub.storage.influxql import InfluxQL, identifier
from hub.storage.lineprotocol import reading_bodies, rollup_bodies

__all__ = ["InfluxDB1Options", "InfluxDB1Storage"]

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")]
DAY_MS = 86_400_000


def shard_duration(keep_ms: int | None) -> str:
    """InfluxDB's own default shard group duration for a retention duration."""
    if keep_ms is None or keep_ms > 182 * DAY_MS:
        return "1w"
    return "1h" if keep_ms < 2 * DAY_MS else "1d"


class InfluxDB1Options(StorageOptions):
    """``[storage]`` keys of the ``influxdb1`` back-end."""

    url: str = Field("http://127.0.0.1:8086", pattern=r"^https?://",
                     description="InfluxDB 1.x base URL")
    database: Name = "fabcity"
    username: str | None = Field(None, description="basic auth user (auth-enabled servers)")
    password: SecretStr | None = None
    create_database: bool = Field(True, description="create the database and retention "
                                                    "policies on start when missing")
    rp_raw: Name = Field("fabcity_raw", description="retention policy of raw readings")
    rp_1m: Name = Field("fabcity_1m", description="retention policy of 1-minute rollups")
    rp_1h: Name = Field("fabcity_1h", description="retention policy of 1-hour rollups")
    batch_size: int = Field(5000, ge=1, le=100_000, description="lines per write request")
    gzip: bool = Field(False, description="compress write bodies (costs CPU on loopback)")
    timeout_s: float = Field(10.0, gt=0)
    verify_ssl: bool = True


class InfluxDB1Storage(Storage):
    """Readings in an InfluxDB 1.x database; thread-safe (pooled keep-alive connections)."""

    Options = InfluxDB1Options
    counts_duplicates = False

    def __init__(
        self,
        url: str = "http://127.0.0.1:8086",
        database: str = "fabcity",
        username: str | None = None,
        password: str | SecretStr | None = None,
        create_database: bool = True,
        rp_raw: str = "fabcity_raw",
        rp_1m: str = "fabcity_1m",
        rp_1h: str = "fabcity_1h",
        batch_size: int = 5000,
        gzip: bool = False,
        timeout_s: float = 10.0,
        verify_ssl: bool = True,
        retention_raw: str = "inf",
        retention_1m: str = "inf",
        retention_1h: str = "inf",
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.create_database = create_database
        self.batch_size = batch_size
        self.gzip = gzip
        self._policies = {rp_raw: (retention_raw, True), rp_1m: (retention_1m, False),
                          rp_1h: (retention_1h, False)}
        self._rollup_rps = {MINUTE_MS: rp_1m, HOUR_MS: rp_1h}
        self._raw_rp = rp_raw
        headers: dict[str, str] = {}
        if username is not None:
            secret = password.get_secret_value() if isinstance(password, SecretStr) else password
            headers.update(urllib3.make_headers(basic_auth=f"{username}:{secret or ''}"))
        self.ql = InfluxQL(self.url, database, rp_raw, self._rollup_rps, headers, timeout_s,
                           verify_ssl, "check storage.username and storage.password and the "
                                       "user's privileges on the database")
        self._ready = not create_database
        with contextlib.suppress(StorageUnavailable):  # the server may start after the
            self._prepare()  # hub: then the first write prepares the database

    def describe(self) -> str:
        return f"InfluxDB 1.x {self.url} database {self.database}"

    # -- set-up -------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Create the database and the retention policies (or alter their durations)."""
        if self._ready:
            return
        db = identifier(self.database)
        self.ql.execute(f"CREATE DATABASE {db}")
        (answer,) = self.ql.select(f"SHOW RETENTION POLICIES ON {db}")
        existing = {row[0] for series in answer for row in series.values}
        for rp, (text, default) in self._policies.items():
            duration = "INF" if text == "inf" else text
            verb = "ALTER" if rp in existing else "CREATE"
            replication = "" if rp in existing else " REPLICATION 1"
            self.ql.execute(
                f"{verb} RETENTION POLICY {identifier(rp)} ON {db} DURATION {duration}"
                f"{replication} SHARD DURATION {shard_duration(retention_ms(text))}"
                + (" DEFAULT" if default else ""))
        self._ready = True

    # -- writing ------------------------------------------------------------------------
    def _post(self, rp: str, body: bytes) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip:
            body = gzip_module.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        response = self.ql.http.request(
            "POST", "/write", {"db": self.database, "rp": rp, "precision": "ms"}, body, headers)
        status = response.status
        if 200 <= status < 300:
            return
        text = error_text(response)
        if status == 400:  # bad points: the rest of the request is stored
            raise ReadingsRefused(text)
        if status == 404:
            raise StorageUnavailable(
                f"InfluxDB at {self.url}: {text}; create database {self.database!r} or set "
                "storage.create_database = true")
        if status == 413:
            raise StorageUnavailable(f"InfluxDB at {self.url} refused a write body as too "
                                     f"large ({text}): lower storage.batch_size")
        raise StorageUnavailable(f"InfluxDB at {self.url} answered HTTP {status}: {text}")

    def write(self, readings: Sequence[Reading]) -> None:
        """POST the readings in chunks of ``batch_size`` lines; return once all are stored.

        InfluxDB answers 204 only after the points are in its write-ahead log. No retry here:
        ingest retries with backoff and acks nothing until this returns.
        """
        if not readings:
            return
        self._prepare()
        for body in reading_bodies(readings, self.batch_size):
            self._post(self._raw_rp, body)
        return

    def write_rollup(self, resolution_ms: int, rows: Sequence[BucketStats]) -> None:
        rp = self._rollup_rps.get(resolution_ms)
        if rp is None:
            raise ValueError(f"no rollup retention policy for {resolution_ms} ms")
        if not rows:
            return
        self._prepare()
        for body in rollup_bodies(rows, self.batch_size):
            self._post(rp, body)

    # -- reading ------------------------------------------------------------------------
    def raw(self, q: ReadingQuery) -> list[Reading]:
        return self.ql.raw(q)

    def stats(self, q: ReadingQuery) -> list[BucketStats]:
        return self.ql.stats(q)

    def latest(
        self, site: str | None = None, device: str | None = None, metric: str | None = None
    ) -> list[Reading]:
        return self.ql.latest(site, device, metric)

    def read_rollup(self, resolution_ms: int, q: ReadingQuery) -> list[BucketStats]:
        return self.ql.read_rollup(resolution_ms, q)

    def first_ms(self) -> int | None:
        return self.ql.first_ms()

    # -- life cycle ---------------------------------------------------------------------
    def health(self) -> str:
        """``"ok"``, or why not: server down, credentials refused, database missing."""
        state = self.ql.ping()
        if state != "ok":
            return state
        try:
            self._prepare()
            self.ql.execute(f"SHOW RETENTION POLICIES ON {identifier(self.database)}")
        except StorageUnavailable as exc:
            return str(exc)
        return "ok"

    def close(self) -> None:
        self.ql.close()
