"""API under load: 200 concurrent clients asking for a day of 1-minute buckets while ingest runs.

Builds (or reuses, with ``--dir``) a SQLite store of ``--series`` pm2_5 series x ``--points``
readings 6 s apart (ending now), computes its rollups with the hub's own worker, then starts a
real Mosquitto and a real hub (``fabcity hub serve`` in a child process) on it. A publisher
feeds ingest at ``--rate`` readings/s; a poller reads the store's ``latest`` table through its
own connection every 20 ms to time each reading from publish to stored. Meanwhile:

* ``--clients`` (200) async clients each ask ``--each`` times
  ``/api/v1/readings?metric=pm2_5&every=1m&start=-24h``: p50/p95 latency, 503 count;
* 20 clients for ``--seconds``: requests/s and p95.

The clients are a minimal asyncio HTTP/1.1 client (one keep-alive connection each,
``Accept-Encoding: gzip`` like a browser, the body read by Content-Length or chunks and kept as
bytes; one answer per phase is inflated and parsed to check it), so that they, on the same
CPUs, cost less than the hub per answer; latency is request sent -> last body byte. The CPU per
answer of the hub, of the clients and of the feed is printed beside the figures.

Prints the hub's peak RSS (VmHWM) and its RSS 5 s after the last request, ingest lag p50/p95,
the write-ahead log's size, and the machine's conditions. Targets: p95 <= 2 s, peak RSS <=
400 MB, ingest lag p95 < 1 s, >= 200 requests/s with 20 clients.
Run: ``.venv/bin/python benchmarks/api_load.py [--dir /tmp/api-load]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib.metadata import version as version_of
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import encode_batch
from fabcity.reading import Reading
from hub.storage.base import HOUR_MS, MINUTE_MS
from hub.storage.rollup import SETTLE_MS, RollupState, RollupWorker
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto, free_port, wait_for_http

STEP_MS = 6_000
QUERY = "/api/v1/readings?metric=pm2_5&every=1m&start=-24h"
FEED_SITE = "feed"
# Every client here is one address: lift the per-address limit on anonymous reads, so the
# figures are the query path's (the storage query limits stay at their defaults).
TARGET_P95_S = 2.0  # 200 concurrent clients
TARGET_RSS_MB = 400
TARGET_LAG_S = 1.0  # ingest lag p95, publish -> stored
TARGET_RATE_S = 200  # requests/s with 20 clients
T = TypeVar("T")
API_EXTRA = "rate_limit_per_s = 100000\nrate_limit_burst = 100000\n"


def build(db: Path, series: int, points: int) -> None:
    """``series`` x ``points`` rows in one SQL statement per series (seconds, not minutes)."""
    t0 = time.perf_counter()
    end = int(time.time() * 1000) // STEP_MS * STEP_MS
    start = end - (points - 1) * STEP_MS
    store = SqliteStorage(db, synchronous="normal")
    store.write([Reading(f"site-{i // 5}", f"dev-{i % 5}", "sds011", "pm2_5", 1.0, start,
                         "ug/m3") for i in range(series)])
    conn = store._conn()
    conn.execute("PRAGMA synchronous=OFF")
    for (series_id,) in conn.execute("SELECT id FROM series").fetchall():
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT OR IGNORE INTO points SELECT ?, ? + i * ?, 5 + (i * 7 + ?) % 40 * 0.5, NULL "
            "FROM n", (points - 1, series_id, start, STEP_MS, series_id))
        conn.execute("INSERT OR REPLACE INTO latest SELECT series, ts_ms, value, flags "
                     "FROM points WHERE series = ? ORDER BY ts_ms DESC LIMIT 1", (series_id,))
        conn.execute("COMMIT")
    built = time.perf_counter() - t0
    total = store.count()
    print(f"  built {total:,} points in {built:.1f} s")
    state = RollupState(db.with_name("fabcity-hub-state.db"), store.describe())
    worker = RollupWorker(store, state)
    now = end + SETTLE_MS + MINUTE_MS
    t1 = time.perf_counter()
    while (state.watermark(MINUTE_MS) or 0) < end or \
            (state.watermark(HOUR_MS) or 0) < end // HOUR_MS * HOUR_MS or state.dirty(1):
        worker.run_once(now, max_windows=96)
    print(f"  rollups in {time.perf_counter() - t1:.1f} s")
    state.close()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: unlike latency, this does not grow
    when other jobs compete for the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(hub_pid: int, run: Callable[[], T]) -> tuple[T, float, float]:
    """``run()``, and the CPU seconds the hub and this process (the clients, the feed) spent
    meanwhile."""
    hub0, own0 = cpu_s(hub_pid), time.process_time()
    result = run()
    return result, cpu_s(hub_pid) - hub0, time.process_time() - own0


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Feed:
    """Publishes ``rate`` readings/s (10 per message) and times each to its arrival in storage."""

    def __init__(self, broker: Mosquitto, db: Path, rate: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-feed")
        self.client.connect("127.0.0.1", broker.port)
        self.db = db
        self.interval_s = 10 / rate
        self.sent: dict[int, float] = {}  # ts_ms of the feed series -> monotonic publish time
        self.lags_s: list[float] = []
        self.published: set[int] = set()  # every ts_ms sent and acknowledged by the broker
        self.stop = threading.Event()

    def publish_loop(self) -> None:
        self.client.loop_start()
        seq = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            seq += 1
            ts = int(time.time() * 1000)
            readings = [Reading(FEED_SITE, "pi-0", "air", "co2" if i == 0 else f"m{i}",
                                400.0 + seq % 50, ts, "ppm") for i in range(10)]
            self.sent[ts] = time.monotonic()
            info = self.client.publish(f"fabcity/v1/{FEED_SITE}/pi-0/readings",
                                       encode_batch(seq, readings), qos=1)
            self.published.add(ts)
            next_at += self.interval_s
            time.sleep(max(0.0, next_at - time.monotonic()))
        if seq:
            info.wait_for_publish(10)  # the last one too, before the loop stops
        self.client.loop_stop()

    def missing(self, wait_s: float = 10.0) -> int:
        """Published readings of the feed's series that storage does not hold, after giving
        the hub ``wait_s`` to store the last ones."""
        sql = ("SELECT p.ts_ms FROM points p JOIN series s ON s.id = p.series "
               "WHERE s.site = ? AND s.metric = 'co2'")
        deadline = time.monotonic() + wait_s
        while True:
            conn = sqlite3.connect(self.db, timeout=30)
            stored = {ts for (ts,) in conn.execute(sql, (FEED_SITE,))}
            conn.close()
            lost = len(self.published - stored)
            if lost == 0 or time.monotonic() > deadline:
                return lost
            time.sleep(0.2)

    def poll_loop(self) -> None:
        conn = sqlite3.connect(self.db, timeout=30)
        seen = 0
        sql = ("SELECT l.ts_ms FROM latest l JOIN series s ON s.id = l.series "
               "WHERE s.site = ? AND s.metric = 'co2'")
        while not self.stop.is_set():
            row = conn.execute(sql, (FEED_SITE,)).fetchone()
            now = time.monotonic()
            if row and row[0] > seen:
                for ts in sorted(t for t in self.sent if seen < t <= row[0]):
                    self.lags_s.append(now - self.sent.pop(ts))
                seen = row[0]
            time.sleep(0.02)
        conn.close()


class HttpError(Exception):
    """The hub's answer is not HTTP/1.1 as this client reads it."""


class LeanConnection:
    """One keep-alive HTTP/1.1 connection asking like a browser (``Accept-Encoding: gzip``)
    and keeping the body as bytes: neither inflated nor parsed, so the clients' CPU per answer
    stays well under the hub's. Reconnects on the next request after an error or a close."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, dict[str, str], bytes, float]:
        """Status, headers (lower-case names), raw body, seconds from the request sent to the
        last body byte."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        request = (f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   "Accept: application/json\r\nAccept-Encoding: gzip\r\n\r\n").encode()
        try:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
            version, status, _ = (status_line + " ").split(" ", 2)
            if not version.startswith("HTTP/1."):
                raise HttpError(f"status line {status_line!r}")
            headers: dict[str, str] = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = await self._chunked(reader)
            elif "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            else:  # delimited by the end of the connection
                body = await reader.read()
                headers["connection"] = "close"
            elapsed = time.perf_counter() - started
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status), headers, body, elapsed

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append((await reader.readexactly(size + 2))[:-2])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def check_answer(headers: dict[str, str], body: bytes) -> tuple[str | None, str]:
    """Why one answer's body is not the expected readings JSON (None when it is): inflated
    if gzipped, parsed, ``count`` pm2_5 readings with a timestamp and a value each; and what
    it was (encoding, bytes sent and inflated, readings)."""
    encoding = headers.get("content-encoding", "identity")
    what = f"{encoding}, {len(body):,} B"
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
            what += f" -> {len(body):,} B"
        answer = json.loads(body)
        readings = answer["readings"]
        what += f", {len(readings):,} readings"
        if not readings or answer["count"] != len(readings):
            return f"count {answer['count']} for {len(readings)} readings", what
        wrong = [r for r in readings if r["metric"] != "pm2_5" or "ts" not in r or "value" not in r]
        return (f"{len(wrong)} readings not pm2_5 with ts and value" if wrong else None), what
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}", what


class Phase:
    """What the clients of one phase saw."""

    def __init__(self) -> None:
        self.latencies: list[float] = []  # of 200s: request sent -> last body byte
        self.busy = 0  # 503s
        self.failed: dict[str, int] = {}  # other statuses and errors
        self.wall_s = 0.0
        self.cpu_s = 0.0  # CPU of the clients' thread (the event loop) only
        self.sample: str | None = "no answer checked"  # check_answer of the first 200
        self.sample_was = ""  # encoding, sizes and readings of the checked answer


async def hammer(host: str, port: int, clients: int, each: int | None, seconds: float | None
                 ) -> Phase:
    """``clients`` connections, each asking ``QUERY`` one request at a time."""
    phase = Phase()
    deadline = time.monotonic() + (seconds or 1e9)

    async def one_client() -> None:
        connection = LeanConnection(host, port)
        n = 0
        while (each is None or n < each) and time.monotonic() < deadline:
            n += 1
            try:
                async with asyncio.timeout(300):
                    status, headers, body, elapsed = await connection.get(QUERY)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    HttpError, ValueError) as exc:
                phase.failed[type(exc).__name__] = phase.failed.get(type(exc).__name__, 0) + 1
                continue
            if status == 200:
                phase.latencies.append(elapsed)
                if phase.sample == "no answer checked":
                    phase.sample, phase.sample_was = check_answer(headers, body)
                continue
            if status == 503:
                phase.busy += 1
            else:
                phase.failed[str(status)] = phase.failed.get(str(status), 0) + 1
            await asyncio.sleep(float(headers.get("retry-after", "1")))
        connection.close()

    t0, cpu0 = time.perf_counter(), time.thread_time()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    phase.wall_s, phase.cpu_s = time.perf_counter() - t0, time.thread_time() - cpu0
    return phase


def cpu_line(phase: Phase, hub_s: float, own_s: float) -> str:
    """CPU per answer of the hub, of the clients (their event loop's thread) and of the rest
    of this process (the feed and the poller), and the sample check of one answer."""
    n = max(1, len(phase.latencies))
    checked = "ok" if phase.sample is None else f"WRONG ({phase.sample})"
    return (f"CPU per answer: hub {hub_s * 1000 / n:.1f} ms, clients {phase.cpu_s * 1000 / n:.1f} "
            f"ms, feed and poller {(own_s - phase.cpu_s) * 1000 / n:.1f} ms; sample answer "
            f"({phase.sample_was or 'none'}) {checked}")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/fabcity-api-load"))
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=200, help="ingested readings/s")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--each", type=int, default=3, help="requests per client (200 case)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the 20-client case")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    print(f"cpus {os.cpu_count()}, load {os.getloadavg()}, python {platform.python_version()}, "
          f"sqlite {sqlite3.sqlite_version}, fastapi {version_of('fastapi')}, uvicorn "
          f"{version_of('uvicorn')}; clients: asyncio HTTP/1.1, gzip accepted, bodies kept raw")
    args.dir.mkdir(parents=True, exist_ok=True)
    db = args.dir / "hub.db"
    if args.rebuild or not db.exists():
        for stale in args.dir.glob("*.db*"):
            stale.unlink()
        build(db, args.series, args.points)
    # The store ends when it was built: the day asked is the last day before the build plus
    # the time since (rollups cover up to the build; the hub's worker rolls up the rest).
    broker = Mosquitto(args.dir / "mosquitto")
    # Our own listener only (the deployment config may listen on 1883 too).
    broker.conf.write_text("".join(
        line for line in broker.conf.read_text().splitlines(keepends=True)
        if not line.startswith("listener ") or line.split()[1] == str(broker.port)))
    broker.start()
    port = free_port()
    config = args.dir / "hub.toml"
    config.write_text(f'state_dir = "{args.dir}"\n[mqtt]\nurl = "{broker.url}"\n'
                      f'[storage]\nbackend = "sqlite"\npath = "{db}"\n'
                      f'[api]\nport = {port}\n{API_EXTRA}')
    with (args.dir / "hub.log").open("ab") as log:
        hub = subprocess.Popen([sys.executable, "-m", "fabcity", "hub", "serve", "-c",
                                str(config)], stdout=subprocess.DEVNULL, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/api/v1/health", 60)
        feed = Feed(broker, db, args.rate)
        threads = [threading.Thread(target=feed.publish_loop, daemon=True),
                   threading.Thread(target=feed.poll_loop, daemon=True)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        idle_kib = rss_kib(hub.pid, "VmRSS")
        burst, hub_s, own_s = cpu_split(
            hub.pid, lambda: asyncio.run(hammer("127.0.0.1", port, args.clients, args.each, None)))
        lat = burst.latencies
        print(f"{args.clients} clients x {args.each}: {len(lat)} answered in {burst.wall_s:.1f} s, "
              f"p50 {pct(lat, 50):.2f} s, p95 {pct(lat, 95):.2f} s, max {max(lat or [0]):.2f} s; "
              f"503: {burst.busy}, other failures: {burst.failed}; {cpu_line(burst, hub_s, own_s)}")
        steady, hub_s, own_s = cpu_split(
            hub.pid, lambda: asyncio.run(hammer("127.0.0.1", port, 20, None, args.seconds)))
        lat20, wall20 = steady.latencies, steady.wall_s
        print(f"20 clients for {wall20:.0f} s: {len(lat20) / wall20:.1f} requests/s, p50 "
              f"{pct(lat20, 50) * 1000:.0f} ms, p95 {pct(lat20, 95) * 1000:.0f} ms; 503: "
              f"{steady.busy}, other failures: {steady.failed}; {cpu_line(steady, hub_s, own_s)}")
        time.sleep(5)
        feed.stop.set()
        for thread in threads:
            thread.join(10)
        lost = feed.missing()
        peak = rss_kib(hub.pid, "VmHWM")
        after = rss_kib(hub.pid, "VmRSS")
        print(f"hub RSS: idle before {idle_kib / 1024:.0f} MB, peak {peak / 1024:.0f} MB, "
              f"5 s after {after / 1024:.0f} MB")
        lags = feed.lags_s
        print(f"ingest lag (publish -> stored, {len(lags)} messages at {args.rate} readings/s): "
              f"p50 {pct(lags, 50) * 1000:.0f} ms, p95 {pct(lags, 95) * 1000:.0f} ms, "
              f"max {max(lags or [0]) * 1000:.0f} ms; {len(feed.published)} published, "
              f"{lost} not stored")
        wal = Path(f"{db}-wal")
        print(f"write-ahead log: {wal.stat().st_size / 1e6 if wal.exists() else 0:.1f} MB; "
              f"load after {os.getloadavg()}")
    finally:
        hub.terminate()
        hub.wait(30)
        broker.stop()
    misses = [what for what, missed in (
        (f"200 clients p95 {pct(lat, 95):.2f} s > {TARGET_P95_S:g} s",
         pct(lat, 95) > TARGET_P95_S),
        (f"peak RSS {peak / 1024:.0f} MB > {TARGET_RSS_MB} MB", peak / 1024 > TARGET_RSS_MB),
        (f"ingest lag p95 {pct(lags, 95):.2f} s >= {TARGET_LAG_S:g} s",
         pct(lags, 95) >= TARGET_LAG_S),
        (f"20 clients {len(lat20) / wall20:.0f} requests/s < {TARGET_RATE_S}",
         len(lat20) / wall20 < TARGET_RATE_S),
        (f"{lost} published readings never stored", lost > 0),
        (f"burst sample answer: {burst.sample}", burst.sample is not None),
        (f"20-client sample answer: {steady.sample}", steady.sample is not None),
    ) if missed]
    print("all targets met" if not misses else "TARGET MISSED: " + "; ".join(misses))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
