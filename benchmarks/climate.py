"""Climate budget: ``GET /api/v1/climate/emissions?period=month`` over a year of 1-minute data.

Builds a SQLite store holding one site's year (2026) of 1-minute ``energy`` (Wh counter) and
``power`` (W) readings for ``--machines`` machines, computes the 1-minute and 1-hour rollups
with the hub's own worker, checks that the answer with rollups equals the answer from raw
points, then times the endpoint and ``GET /api/v1/machines?period=month`` over the same
year through the real FastAPI app (in-process TestClient). Prints p50/p95/p99 of each and the
machine's conditions; exits 1 if a p95 exceeds the budget. Run:
``.venv/bin/python benchmarks/climate.py [--machines 3] [--requests 50]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from importlib.metadata import version as version_of
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from fabcity.reading import Reading
from hub.api.app import create_app
from hub.climate.emissions import site_emissions
from hub.climate.series import year_range
from hub.config import SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import HOUR_MS, MINUTE_MS
from hub.storage.rollup import RollupState, RollupWorker
from hub.storage.sqlite import SqliteStorage

BUDGET_P95_MS = 200.0
SITE = SiteConfig(id="fablab-bcn", name="Fab Lab", gpc_sector="I.2",
                  grid_kgco2e_per_kwh={"2026": 0.25}, grid_loss_factor=0.06)
URL = "/api/v1/climate/emissions?site=fablab-bcn&year=2026&period=month"
MACHINES_URL = ("/api/v1/machines?site=fablab-bcn&start=2026-01-01T00:00:00Z"
                "&end=2027-01-01T00:00:00Z&period=month")


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = ", ".join(f"{name} {version_of(name)}" for name in ("fastapi", "pydantic"))
    return (f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {versions}\n"
            f"{platform.platform()}, {os.cpu_count()} CPUs, load average {load}")


def build(storage: SqliteStorage, machines: int) -> int:
    """A year of 1-minute energy and power per machine; returns how many readings."""
    start, end = year_range(2026)
    total = 0
    for m in range(machines):
        device = f"pi-machine-{m}"
        counter = 0.0
        batch: list[Reading] = []
        for ts in range(start, end, MINUTE_MS):
            watts = 800.0 if (ts // HOUR_MS + m) % 3 == 0 else 20.0
            counter += watts / 60
            batch.append(Reading("fablab-bcn", device, "plug", "energy", round(counter, 3), ts,
                                 "Wh"))
            batch.append(Reading("fablab-bcn", device, "plug", "power", watts, ts, "W"))
            if len(batch) >= 100_000:
                storage.write(batch)
                total += len(batch)
                batch = []
        storage.write(batch)
        total += len(batch)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=3)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    print(conditions())
    with tempfile.TemporaryDirectory() as tmp:
        storage = SqliteStorage(Path(tmp) / "hub.db", synchronous="normal")
        t = time.perf_counter()
        n = build(storage, args.machines)
        print(f"stored {n:,} readings in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        raw_answer = site_emissions(storage, SITE, *year_range(2026), "month")
        print(f"emissions from raw points (no rollups): {time.perf_counter() - t:.1f} s",
              flush=True)
        state = RollupState(Path(tmp) / "state.db", storage.describe())
        worker = RollupWorker(storage, state)
        t = time.perf_counter()
        now = year_range(2027)[0] + HOUR_MS
        while (state.watermark(HOUR_MS) or 0) < year_range(2027)[0]:
            worker.run_once(now, max_windows=24 * 31)
            print(f"\r  rollups: {time.perf_counter() - t:.0f} s", end="", flush=True)
        storage.rollups = state
        print(f"\rrollups computed in {time.perf_counter() - t:.1f} s")
        rolled = site_emissions(storage, SITE, *year_range(2026), "month")
        for a, b in zip(raw_answer.periods, rolled.periods, strict=True):
            for x, y in zip(a.rows, b.rows, strict=True):
                assert abs(x.activity - y.activity) < 1e-6, (x, y)
        print("answer with rollups = answer from raw points")
        ctx = HubContext(storage=storage, registry=DeviceRegistry(Path(tmp) / "reg.db"),
                         sites=[SITE])
        worst = 0.0
        with TestClient(create_app(ctx)) as client:
            for url in (URL, MACHINES_URL):
                p95, figures = timed(client, url, args.requests)
                print(f"{url}: {args.machines} machines (energy + power), {args.requests} "
                      f"requests: {figures} (budget p95 <= {BUDGET_P95_MS:.0f} ms)", flush=True)
                worst = max(worst, p95)
        storage.close()
        return 0 if worst <= BUDGET_P95_MS else 1


def timed(client: TestClient, url: str, requests: int) -> tuple[float, str]:
    """p95 of ``requests`` GETs of ``url`` (after one warm-up), and p50/p95/p99 as text."""
    assert client.get(url).status_code == 200
    times = []
    for _ in range(requests):
        t = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert answer.status_code == 200
    q = statistics.quantiles(sorted(times), n=100)
    return q[94], f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, p99 {q[98]:.1f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
