"""Readings budget: ``GET /api/v1/readings`` for one series on a 10-million-point SQLite store.

Builds (or reuses, with ``--dir``) a store of ``--series`` x ``--points`` readings spread over
the week before the build, computes its 1-minute and 1-hour rollups with the hub's own worker,
then asks the real FastAPI app (uvicorn in a child process) for one series:

* 24 h at 1-minute buckets, ``start=-24h`` as a live chart asks, from the 1-minute rollups
  (the budget: p95 <= 50 ms);
* the same without rollups (bucket statistics from the raw points, for comparison);
* 24 h of raw readings of the series (the first 10,000 of ~14,300: p95 <= 30 ms);
* one site (10 series) over 24 h at 1-minute buckets (the first 10,000: p95 <= 60 ms);
* the same day as a closed range (absolute start and end: the answer carries an ETag);
* 7 days at 1-hour buckets, open and closed, from the 1-hour rollups.

Prints p50/p95/p99 per case, the time storage alone takes for the budget query, the query
plans, and the machine's conditions. The cases with a target (``TARGETS_P95_MS``) compute
every request (no shared answer), as do the in-process comparison and ``--profile``, a
cProfile of the budget case with the whole request in one thread (httpx's ASGI transport;
FastAPI's thread hop made direct).
Exits 1 if a target is missed. Run:
``.venv/bin/python benchmarks/api_readings.py [--series 100] [--points 100000] [--requests 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import http.client
import itertools
import json
import os
import platform
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version as version_of
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from fastapi.testclient import TestClient

from fabcity.reading import Reading, format_ts
from hub.api.app import create_app
from hub.config import ApiConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import HOUR_MS, MINUTE_MS, ReadingQuery
from hub.storage.rollup import SETTLE_MS, RollupState, RollupWorker
from hub.storage.sqlite import _NAMES, _READ_ROLLUP, _STATS, SqliteStorage
from tests.servers import free_port

DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
BUDGET = "24 h at 1 m, start=-24h, rollups  [budget]"
RAW_DAY = "24 h raw, start=-24h (first 10,000)"
SITE_DAY = "one site, 24 h at 1 m (first 10,000)"
TARGETS_P95_MS = {BUDGET: 50.0, RAW_DAY: 30.0, SITE_DAY: 60.0}
INSERT_ROWS = 200_000  # rows per transaction when building the store

# One client asks many times in a row: the anonymous per-address rate limit would answer 429.
UNLIMITED = ApiConfig(rate_limit_per_s=100_000, rate_limit_burst=100_000)
COMPUTED = "_computed"  # a case marker, not sent: every request of the case is computed


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = ", ".join(f"{name} {version_of(name)}"
                         for name in ("fastapi", "starlette", "pydantic", "httpx", "orjson"))
    return (f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {versions}\n"
            f"{platform.platform()}, {os.cpu_count()} CPUs, load average {load}")


def series_key(i: int) -> tuple[str, str, str, str]:
    return (f"site-{i // 10:02d}", f"device-{i:03d}", "sensor", "temperature")


def build(storage: SqliteStorage, n_series: int, n_points: int, end_ms: int) -> None:
    """Points of every series, evenly spread over the week before ``end_ms``."""
    step_ms = WEEK_MS // n_points
    start_ms = end_ms - n_points * step_ms
    # One reading per series through the storage's own write creates the series rows.
    storage.write([Reading(*series_key(i), 20.0, start_ms, "degC") for i in range(n_series)])
    ids = [storage._series[series_key(i)][0] for i in range(n_series)]
    conn = storage._conn()
    t0 = time.perf_counter()
    rows: list[tuple[int, int, float, None]] = []
    total = 0

    def flush() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        rows.clear()

    for n, series_id in enumerate(ids, 1):  # series-major: appends to the primary key's B-tree
        for k in range(n_points):
            rows.append((series_id, start_ms + k * step_ms, 18.0 + (k % 1440) / 120.0, None))
            if len(rows) >= INSERT_ROWS:
                total += len(rows)
                flush()
        if n % 10 == 0:
            print(f"\r  building: {total:,} points, {time.perf_counter() - t0:.0f} s",
                  end="", flush=True)
    total += len(rows)
    flush()
    conn.execute("INSERT OR REPLACE INTO latest SELECT series, MAX(ts_ms), 0, NULL FROM points "
                 "GROUP BY series")
    elapsed = time.perf_counter() - t0
    print(f"\r  built {total:,} points in {elapsed:.1f} s ({total / elapsed:,.0f} rows/s, "
          f"executemany, {INSERT_ROWS:,}-row transactions)")


def roll_up(storage: SqliteStorage, state: RollupState, end_ms: int) -> None:
    """Run the hub's rollup worker until both watermarks reach the end of the data."""
    worker = RollupWorker(storage, state)
    now = end_ms + SETTLE_MS + MINUTE_MS
    t0 = time.perf_counter()
    passes = 0
    while (state.watermark(MINUTE_MS) or 0) < end_ms or (state.watermark(HOUR_MS) or 0) < \
            end_ms // HOUR_MS * HOUR_MS or state.dirty(1):
        worker.run_once(now, max_windows=48)
        passes += 1
        print(f"\r  rollups: pass {passes}, {time.perf_counter() - t0:.0f} s", end="", flush=True)
    print(f"\r  rollups caught up in {time.perf_counter() - t0:.1f} s ({passes} passes of the "
          f"hub's RollupWorker.run_once)")


def query_plans(storage: SqliteStorage) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of the budget case's reads: rollups and raw bucket statistics."""
    q = ReadingQuery(0, 1, *series_key(0), every_ms=MINUTE_MS)
    where_r, params_r = storage._where(q, "r.start_ms")
    where_p, params_p = storage._where(q, "p.ts_ms")
    conn = storage._conn()
    plans = {}
    for name, sql, params in (
            ("rollups", _READ_ROLLUP.format(names=_NAMES, where=where_r), [MINUTE_MS, *params_r]),
            ("raw", _STATS.format(names=_NAMES, every=MINUTE_MS, where=where_p), params_p)):
        plans[name] = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                       if "SEARCH" in row[-1] or "SCAN" in row[-1]]
    return plans


def timed(call: Callable[[], Any], n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


def serve(db: Path, state_path: Path, port: int, rollups: bool) -> None:
    """The hub's app on this store under uvicorn (run in a child process)."""
    import uvicorn

    storage = SqliteStorage(db)
    if rollups:
        storage.rollups = RollupState(state_path, storage.describe())
    registry = DeviceRegistry(db.with_name(f"registry-{port}.db"))
    uvicorn.run(create_app(HubContext(storage, registry, api=UNLIMITED)), host="127.0.0.1",
                port=port, log_level="warning")


class Server:
    """``serve`` in a child process, and a keep-alive HTTP connection to it."""

    def __init__(self, db: Path, state_path: Path, rollups: bool) -> None:
        self.port = free_port()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", __file__, "--serve", str(db), str(state_path),
             str(self.port), "rollups" if rollups else "raw"])
        deadline = time.monotonic() + 30
        while True:
            try:
                self.reconnect()
                self.conn.request("GET", "/api/v1/health")
                self.conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (user + system): unlike latency, this
        does not grow when other jobs compete for the cores."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reconnect(self) -> None:
        """A fresh connection (uvicorn closes one left idle for 5 s)."""
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def get(self, params: dict[str, str]) -> Callable[[], int]:
        """A request as a browser makes it (gzip accepted); returns the body size. With
        ``COMPUTED`` in the parameters every request differs (its ``limit``), so none is
        answered from the hub's 2-second shared answers: the storage work happens each time."""
        params = dict(params)
        computed = params.pop(COMPUTED, None) is not None
        path = "/api/v1/readings?" + urlencode(params)
        sent = itertools.count()

        def call() -> int:
            url = f"{path}&limit={10_000 + next(sent)}" if computed else path
            self.conn.request("GET", url, headers={"Accept-Encoding": "gzip"})
            resp = self.conn.getresponse()
            body = resp.read()
            assert resp.status == 200, body[:300]
            return len(body)
        return call

    def count(self, params: dict[str, str]) -> int:
        params = {k: v for k, v in params.items() if k != COMPUTED}
        self.conn.request("GET", "/api/v1/readings?" + urlencode(params))
        return int(json.loads(self.conn.getresponse().read())["count"])

    def close(self) -> None:
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(10)


Case = tuple[str, dict[str, str], int, bool]  # name, parameters, requests, rollups


def run_cases(servers: dict[bool, Server], cases: list[Case]) -> dict[str, float]:
    """Print each case's figures; returns each case's p95."""
    p95s = {}
    for name, params, n, rollups in cases:
        server = servers[rollups]
        server.reconnect()
        count = server.count(params)
        call = server.get(params)
        timed(call, 5)  # warm the page cache and the app
        cpu_before = server.cpu_s()
        latencies = timed(call, n)
        cpu_ms = (server.cpu_s() - cpu_before) * 1000 / n
        print(f"{line(name, count, latencies)}  server CPU {cpu_ms:5.1f} ms/request", flush=True)
        p95s[name] = percentiles(latencies)[1]
    return p95s


def get(client: TestClient, params: dict[str, str]) -> Callable[[], int]:
    """The in-process request, computed each time as the HTTP cases marked ``COMPUTED``."""
    params = {k: v for k, v in params.items() if k != COMPUTED}
    sent = itertools.count()

    def call() -> int:
        resp = client.get("/api/v1/readings", params={**params, "limit": 10_000 + next(sent)})
        assert resp.status_code == 200, resp.text
        return int(resp.json()["count"])
    return call


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def line(name: str, count: int | str, latencies: list[float]) -> str:
    p50, p95, p99 = percentiles(latencies)
    return (f"  {name:44s} {count:>5} readings  n={len(latencies):3d}  p50 {p50:6.1f} ms  "
            f"p95 {p95:6.1f} ms  p99 {p99:6.1f} ms")


def profile(app: Any, params: dict[str, str], n: int) -> None:
    """cProfile ``n`` requests with everything in this thread."""
    async def direct(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(n):  # each computed: no shared answer
                resp = await client.get("/api/v1/readings",
                                        params={**params, "limit": 10_000 + i})
                assert resp.status_code == 200

    profiler = cProfile.Profile()
    with mock.patch("fastapi.routing.run_in_threadpool", direct), \
            mock.patch("fastapi.dependencies.utils.run_in_threadpool", direct):
        profiler.enable()
        asyncio.run(run())
        profiler.disable()
    print(f"cProfile of {n} budget requests in one thread (by own time, top 20):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    print("by cumulative time, hub code only (top 15):")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"/(hub|fabcity)/", 15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--points", type=int, default=100_000, help="per series")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--raw-requests", type=int, default=50,
                        help="requests of the case without rollups")
    parser.add_argument("--dir", type=Path, help="keep the store here and reuse it next time")
    parser.add_argument("--profile", action="store_true", help="cProfile the budget case")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]), int(args.serve[2]),
              args.serve[3] == "rollups")
        return 0
    print(conditions())
    tmp = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fabcity-bench-")
        args.dir = Path(tmp.name)
    args.dir.mkdir(parents=True, exist_ok=True)
    db = args.dir / f"readings-{args.series}x{args.points}.db"
    fresh = not db.exists()
    storage = SqliteStorage(db, synchronous="normal")
    state = RollupState(args.dir / f"state-{args.series}x{args.points}.db", storage.describe())
    if fresh:
        build(storage, args.series, args.points, int(time.time()) // 60 * 60_000)
    end_ms = int(storage._conn().execute("SELECT MAX(ts_ms) FROM latest").fetchone()[0])
    if not fresh:
        print(f"  reusing {db}: {storage.count():,} points up to {format_ts(end_ms)}")
    roll_up(storage, state, end_ms)
    for name, plan in query_plans(storage).items():
        print(f"query plan, {name}: {' / '.join(plan)}")

    registry = DeviceRegistry(args.dir / "registry.db")
    app = create_app(HubContext(storage, registry, api=UNLIMITED))
    client = TestClient(app)
    site, device, sensor, metric = series_key(args.series // 2)
    one = {"site": site, "device": device, "sensor": sensor, "metric": metric}
    day = {**one, "start": "-24h", "every": "1m"}
    closed_day = {**one, "start": format_ts(end_ms - DAY_MS), "end": format_ts(end_ms),
                  "every": "1m"}
    week = {**one, "start": "-7d", "every": "1h"}
    closed_week = {**one, "start": format_ts(end_ms - WEEK_MS), "end": format_ts(end_ms),
                   "every": "1h"}
    cases: list[Case] = [
        (BUDGET, {**day, COMPUTED: "1"}, args.requests, True),
        ("  the same, repeated: shared answers (2 s)", day, args.requests, True),
        ("24 h at 1 m, start=-24h, raw points", {**day, COMPUTED: "1"}, args.raw_requests,
         False),
        ("24 h at 1 m, closed range (ETag), rollups", closed_day, args.requests, True),
        ("7 d at 1 h, start=-7d, rollups", week, args.requests, True),
        ("7 d at 1 h, closed range (ETag), rollups", closed_week, args.requests, True),
        (RAW_DAY, {**one, "start": "-24h", COMPUTED: "1"}, args.requests, True),
        (SITE_DAY, {"site": site, "start": "-24h", "every": "1m", COMPUTED: "1"},
         args.requests, True)]
    state_path = args.dir / f"state-{args.series}x{args.points}.db"
    print(f"GET /api/v1/readings, one series ({site}/{device}), uvicorn in a child process, "
          "one keep-alive client, gzip accepted:")
    servers = {True: Server(db, state_path, True), False: Server(db, state_path, False)}
    try:
        p95s = run_cases(servers, cases)
    finally:
        for server in servers.values():
            server.close()
    print("the budget case in-process, computed each time (Starlette TestClient: an event "
          "loop thread per request, the JSON answer parsed):")
    storage.rollups = state
    call = get(client, day)
    timed(call, 5)
    print(line("24 h at 1 m, start=-24h, rollups", call(), timed(call, args.requests)))
    storage.rollups = state
    now = int(time.time() * 1000)
    q = ReadingQuery(now - DAY_MS, now, site, device, sensor, metric, every_ms=MINUTE_MS,
                     limit=10_001)
    print(line("storage.query alone (budget case)", len(storage.query(q)),
               timed(lambda: storage.query(q), args.requests)))
    if args.profile:
        profile(app, day, args.requests)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = True
    for name, target in TARGETS_P95_MS.items():
        met = p95s[name] <= target
        ok = ok and met
        print(f"{name.strip()}: p95 {p95s[name]:.1f} ms {'<=' if met else '>'} {target:.0f} ms: "
              f"{'met' if met else 'MISSED'}")
    client.close()
    storage.close()
    registry.close()
    state.close()
    if tmp is not None:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
