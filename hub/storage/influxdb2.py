"""InfluxDB 2.x / 3.x storage: influxdb-client's batching write API, InfluxQL reads.

Writes go through the client's ``WriteApi`` in batching mode (batches of ``batch_size``
lines, gzip, retries with backoff on 429 / 5xx / connection errors honouring
``Retry-After``). Its callbacks report every request's fate: :meth:`write` hands over the
lines of one batch of readings and returns only once success callbacks have confirmed every
one of them, so ingest acks nothing the server has not stored. A refused request (400, 413,
422) fails the write with ``ReadingsRefused``; anything retrying may fix later (exhausted
retries, 5xx, 429, connection errors, a refused token) with ``StorageUnavailable``.

Reads are InfluxQL over the v1-compatible ``/query`` (InfluxDB 2.x maps the buckets to a
database and retention policies, see :mod:`hub.storage.influxdb2_setup`; 3.x serves it
natively). InfluxDB overwrites a point with the same series and time, so replays are
idempotent but not countable (``counts_duplicates = False``).
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi, WriteOptions
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from pydantic import Field
from reactivex.scheduler import ThreadPoolScheduler

from fabcity.errors import ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading
from hub.storage.base import (
    HOUR_MS,
    MINUTE_MS,
    BucketStats,
    ReadingQuery,
    Storage,
    StorageOptions,
)
from hub.storage.influxdb2_setup import BucketPlan, set_up
from hub.storage.lineprotocol import reading_bodies, reading_lines, rollup_bodies

__all__ = ["InfluxDB2Options", "InfluxDB2Storage"]

log = logging.getLogger(__name__)

ROLLUP_RPS = {MINUTE_MS: "rollup_1m", HOUR_MS: "rollup_1h"}  # InfluxQL names of the rollups
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$"
_RETRYABLE_4XX = {401, 403, 404, 408, 429}  # not the readings' fault
SETUP_RETRY_S = 60.0  # between attempts to check buckets on a server that was down
_MS: Any = WritePrecision.MS  # typed as a plain str in the client


class InfluxDB2Options(StorageOptions):
    """``[storage]`` keys of the ``influxdb`` back-end (InfluxDB 2.x / 3.x).

    ``retention_raw`` is the raw bucket's own retention, set where the bucket is created
    (the hub warns at start when they differ); ``retention_1m`` / ``retention_1h`` are given
    to the rollup buckets the hub creates.
    """

    url: str = Field(pattern=r"^https?://", description="server, e.g. http://localhost:8086")
    token: str = Field("", description="API token (InfluxDB 2.x / 3.x)")
    org: str = Field("", description="organisation (InfluxDB 2.x; 3.x ignores it)")
    bucket: str = Field(pattern=_NAME, description="raw readings' bucket (3.x: database)")
    query_url: str | None = Field(None, pattern=r"^https?://",
                                  description="InfluxQL endpoint's server (default: url)")
    database: str | None = Field(None, pattern=_NAME,
                                 description="InfluxQL database name (default: bucket)")
    retention_policy: str = Field("autogen", pattern=_NAME,
                                  description="InfluxQL retention policy of the raw bucket")
    rollup_bucket_1m: str | None = Field(None, pattern=_NAME,
                                         description="default: <bucket>_1m")
    rollup_bucket_1h: str | None = Field(None, pattern=_NAME,
                                         description="default: <bucket>_1h")
    create_dbrp: bool = Field(True, description="map buckets to database/RP for InfluxQL")
    batch_size: int = Field(5_000, ge=1, le=100_000, description="lines per write request")
    flush_interval_ms: int = Field(100, ge=1, le=60_000,
                                   description="longest a partial batch waits in the client")
    gzip: bool = True
    max_retries: int = Field(3, ge=0, le=100)
    retry_interval_ms: int = Field(1_000, ge=1, description="first retry delay")
    max_retry_delay_ms: int = Field(10_000, ge=1)
    exponential_base: float = Field(2.0, ge=1.0, le=10.0)
    timeout_s: float = Field(10.0, gt=0, le=600, description="per HTTP request")
    verify_ssl: bool = True


def _lines_in(body: bytes) -> int:
    """Lines in a request body (a trailing newline ends the last line, it adds none)."""
    return body.count(b"\n") + (0 if body.endswith(b"\n") else 1) if body else 0


def _classify(exc: BaseException, last_retry: str | None) -> Exception:
    """A write error as the storage contract's exception."""
    if isinstance(exc, ApiException) and exc.status is not None:
        message = str(exc.message or exc.reason or "").strip()
        if exc.status in (401, 403):
            return StorageUnavailable(
                f"InfluxDB refused the token (HTTP {exc.status}: {message}): check `token`, "
                "that it may write to the bucket, and `org`")
        if exc.status == 404:
            return StorageUnavailable(f"InfluxDB: bucket or organisation not found ({message}): "
                                      "check `bucket` and `org`")
        if 400 <= exc.status < 500 and exc.status not in _RETRYABLE_4XX:
            return ReadingsRefused(message or f"HTTP {exc.status}")
        return StorageUnavailable(f"InfluxDB write failed (HTTP {exc.status}: {message})")
    cause = f"{type(exc).__name__}: {exc}"
    if last_retry:
        cause += f"; last retried error: {last_retry}"
    return StorageUnavailable(f"InfluxDB write failed after retries ({cause})")


class InfluxDB2Storage(Storage):
    """Readings in InfluxDB 2.x / 3.x (or anything serving ``/api/v2/write`` and ``/query``)."""

    Options = InfluxDB2Options
    counts_duplicates = False

    #: Hand the batcher pre-joined chunks of ``batch_size`` lines (True) or one item per
    #: line (False): its pipeline costs ~8 µs per item, too much at 50k readings/s.
    chunked = True

    def __init__(self, **options: Any) -> None:
        self.options = o = InfluxDB2Options.model_validate(options)
        self.bucket = o.bucket
        self.database = o.database or o.bucket
        self.rollup_buckets = {MINUTE_MS: o.rollup_bucket_1m or f"{o.bucket}_1m",
                               HOUR_MS: o.rollup_bucket_1h or f"{o.bucket}_1h"}
        # No callback within this long: the request is stuck (e.g. a huge Retry-After).
        self._deadline_s = (o.timeout_s * (o.max_retries + 2)
                            + o.max_retry_delay_ms / 1000 * o.max_retries)
        self._org: Any = o.org or None  # None: no org parameter (InfluxDB 3.x)
        self._client = InfluxDBClient(url=o.url, token=o.token, org=self._org,  # type: ignore[arg-type]
                                      timeout=int(o.timeout_s * 1000), enable_gzip=o.gzip,
                                      verify_ssl=o.verify_ssl)
        self._write_lock = threading.Lock()  # one write() at a time
        self._state = threading.Condition()  # guards the fields below
        self._epoch = 0
        self._pending = 0  # lines of the current write not yet reported
        self._failure: Exception | None = None
        self._retrying: str | None = None
        self._last_error: str | None = None
        self._closed = False
        self._schedulers: dict[int, ThreadPoolScheduler] = {}
        self._write_api = self._open_write_api()
        self._sync_api: WriteApi | None = None
        self._query: Any = None
        self._setup_done = self._setup_failed = False
        self._setup_retry_at = 0.0
        self._set_up()

    # -- set-up -----------------------------------------------------------------------
    def _open_write_api(self) -> WriteApi:
        """A batching WriteApi whose callbacks count for this epoch only."""
        o = self.options
        with self._state:
            self._epoch += 1
            epoch = self._epoch
        write_options = WriteOptions(
            batch_size=1 if self.chunked else o.batch_size,
            flush_interval=o.flush_interval_ms, jitter_interval=0,
            retry_interval=o.retry_interval_ms, max_retries=o.max_retries,
            max_retry_delay=o.max_retry_delay_ms, exponential_base=o.exponential_base,
            max_retry_time=int(self._deadline_s * 1000),
            max_close_wait=int(self._deadline_s * 1000),
            write_scheduler=self._scheduler(epoch))

        def on_success(_conf: tuple[str, str, str], body: bytes) -> None:
            self._report(epoch, body, None)

        def on_error(_conf: tuple[str, str, str], body: bytes, exc: Exception) -> None:
            self._report(epoch, body, exc)

        def on_retry(_conf: tuple[str, str, str], _body: bytes, exc: Exception) -> None:
            with self._state:
                if epoch == self._epoch:
                    self._retrying = str(exc)[:300]

        api: WriteApi = self._client.write_api(
            write_options=write_options, success_callback=on_success, error_callback=on_error,
            retry_callback=on_retry)
        api._fabcity_epoch = epoch  # type: ignore[attr-defined]
        return api

    def _scheduler(self, epoch: int) -> ThreadPoolScheduler:
        """Each WriteApi gets its own sender thread (the client's default one is shared)."""
        scheduler = self._schedulers[epoch] = ThreadPoolScheduler(max_workers=1)
        return scheduler

    def _close_write_api(self, api: WriteApi) -> None:
        """Flush and dispose ``api``, then stop its sender thread."""
        try:
            api.close()
        finally:
            scheduler = self._schedulers.pop(getattr(api, "_fabcity_epoch", -1), None)
            if scheduler is not None:
                scheduler.executor.shutdown(wait=False)

    def _set_up(self) -> None:
        """Buckets and DBRP mappings (best effort; retried before a write until it ran)."""
        o = self.options
        plans = [BucketPlan(self.bucket, o.retention_raw, o.retention_policy, default=True)]
        plans += [BucketPlan(self.rollup_buckets[res], retention, ROLLUP_RPS[res], create=True)
                  for res, retention in ((MINUTE_MS, o.retention_1m), (HOUR_MS, o.retention_1h))]
        self._setup_retry_at = time.monotonic() + SETUP_RETRY_S
        try:
            set_up(o.url, o.token, o.org, plans, self.database, o.create_dbrp,
                   timeout_s=o.timeout_s, verify_ssl=o.verify_ssl)
        except OSError as exc:
            if not self._setup_failed:  # once, not on every retried write
                log.warning("influxdb: cannot reach %s to check buckets (%s); will try again",
                            o.url, exc)
            self._setup_failed = True
            return
        self._setup_done = True

    @property
    def _ql(self) -> Any:
        """The InfluxQL reader (``hub.storage.influxql``), opened on first use."""
        if self._query is None:
            self._query = self._open_query()
        return self._query

    def _open_query(self) -> Any:
        from hub.storage.influxql import InfluxQL

        o = self.options
        return InfluxQL(o.query_url or o.url, self.database, o.retention_policy,
                        dict(ROLLUP_RPS), {"Authorization": f"Token {o.token}"},
                        o.timeout_s, o.verify_ssl,
                        credentials_hint="check `token` and that it may read the buckets "
                                         "(InfluxDB 2.x: and their DBRP mappings)")

    def describe(self) -> str:
        return f"influxdb {self.options.url} org={self.options.org} bucket={self.bucket}"

    # -- writing ----------------------------------------------------------------------
    def _report(self, epoch: int, body: bytes, exc: Exception | None) -> None:
        """A success or error callback: account for the lines of ``body``."""
        with self._state:
            if epoch != self._epoch:
                return  # a write given up on: its caller already got an error
            self._pending -= _lines_in(body)
            if exc is None:
                self._retrying = None
            elif self._failure is None:
                self._failure = _classify(exc, self._retrying)
                if isinstance(self._failure, StorageUnavailable):  # not refused readings
                    self._last_error = str(self._failure)
                self._retrying = None
            self._state.notify_all()

    def write(self, readings: Sequence[Reading]) -> None:
        """Store ``readings``; returns once the server confirmed every line."""
        if not readings:
            return
        if self.chunked:
            items = reading_bodies(readings, self.options.batch_size)
        else:
            items = reading_lines(readings)
        with self._write_lock:
            if self._closed:
                raise StorageUnavailable("storage is closed")
            if not self._setup_done and time.monotonic() >= self._setup_retry_at:
                self._set_up()
            with self._state:
                self._pending = len(readings)
                self._failure = None
            self._write_api.write(self.bucket, self._org, items, _MS)
            self._wait(len(readings))
            with self._state:
                failure = self._failure
            if failure is not None:
                raise failure
            self._last_error = None
        return

    def _wait(self, submitted: int) -> None:
        """Until every line is reported; raise if no report comes within the deadline."""
        with self._state:
            deadline = time.monotonic() + self._deadline_s
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                before = self._pending
                self._state.wait(remaining)
                if self._pending != before:  # progress: the deadline starts again
                    deadline = time.monotonic() + self._deadline_s
            stuck = self._pending
        if stuck > 0:
            # Forget this pipeline: late callbacks must not count for the next write.
            old, self._write_api = self._write_api, self._open_write_api()
            threading.Thread(target=self._close_write_api, args=(old,), name="influxdb-close",
                             daemon=True).start()
            self._last_error = (f"no answer for {stuck} of {submitted} lines within "
                                f"{self._deadline_s:.0f} s")
            raise StorageUnavailable(f"InfluxDB write timed out: {self._last_error}"
                                     + (f" (retrying: {self._retrying})" if self._retrying else ""))

    def write_rollup(self, resolution_ms: int, rows: Sequence[BucketStats]) -> None:
        if not rows:
            return
        if self._sync_api is None:
            self._sync_api = self._client.write_api(write_options=SYNCHRONOUS)
        try:
            for body in rollup_bodies(rows, self.options.batch_size):  # one request each
                self._sync_api.write(self.rollup_buckets[resolution_ms], self._org, body, _MS)
        except Exception as exc:
            raise _classify(exc, None) from exc

    # -- reading ----------------------------------------------------------------------
    def raw(self, q: ReadingQuery) -> list[Reading]:
        result: list[Reading] = self._ql.raw(q)
        return result

    def stats(self, q: ReadingQuery) -> list[BucketStats]:
        result: list[BucketStats] = self._ql.stats(q)
        return result

    def latest(self, site: str | None = None, device: str | None = None,
               metric: str | None = None) -> list[Reading]:
        result: list[Reading] = self._ql.latest(site, device, metric)
        return result

    def read_rollup(self, resolution_ms: int, q: ReadingQuery) -> list[BucketStats]:
        result: list[BucketStats] = self._ql.read_rollup(resolution_ms, q)
        return result

    def first_ms(self) -> int | None:
        result: int | None = self._ql.first_ms()
        return result

    # -- life cycle -------------------------------------------------------------------
    def health(self) -> str:
        with self._state:
            if self._retrying:
                return f"retrying: {self._retrying}"
            if self._last_error:
                return self._last_error
        return "ok"

    def close(self) -> None:
        """Flush and dispose the write API and the client; safe to call twice."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
        closers: list[Callable[[], None]] = [lambda: self._close_write_api(self._write_api)]
        if self._sync_api is not None:
            closers.append(self._sync_api.close)
        closers.append(self._client.close)
        if self._query is not None:
            closers.append(self._query.close)
        for close in closers:
            try:
                close()
            except Exception as exc:  # closing must not fail the hub's exit
                log.warning("influxdb: error while closing: %s", exc)
