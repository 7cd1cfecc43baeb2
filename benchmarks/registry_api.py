"""/api/v1/devices and /api/v1/sites with many registered devices, and RFC 3339 parsing speed.

Run: ``.venv/bin/python benchmarks/registry_api.py [--devices 1000] [--timestamps 100000]``.
The registry is fed through its own API (status + a 3-sensor meta per device); the HTTP
calls go through FastAPI's TestClient, so the figures are the hub's CPU per request.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastapi
import pydantic
from fastapi.testclient import TestClient

from fabcity.device import DeviceMeta, Status
from fabcity.reading import format_ts, now_ms, parse_ts
from hub.api import create_app
from hub.context import HubContext
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage


def _meta(site: str, device: str) -> DeviceMeta:
    return DeviceMeta.model_validate({
        "site": site, "device": device, "kind": "environment", "name": f"Device {device}",
        "location": {"lat": 41.39, "lon": 2.19}, "version": "0.1.0",
        "sensors": [{"name": f"s{i}", "driver": "simulated",
                     "metrics": {"temperature": "degC", "humidity": "%"}} for i in range(3)]})


def bench_api(devices: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        registry = DeviceRegistry(Path(tmp) / "registry.db")
        storage = SqliteStorage(Path(tmp) / "hub.db")
        at = now_ms()
        for n in range(devices):
            site, device = f"site-{n % 20}", f"dev-{n}"
            registry.set_status(site, device, Status(state="online"), at)
            registry.set_meta(site, device, _meta(site, device))
        ctx = HubContext(storage=storage, registry=registry, metrics=HubMetrics(),
                         mqtt_connected=lambda: True)
        with TestClient(create_app(ctx)) as client:
            for path in ("/api/v1/devices", "/api/v1/sites"):
                client.get(path)  # warm up
                times = []
                for _ in range(calls):
                    t0 = time.perf_counter()
                    response = client.get(path)
                    times.append(time.perf_counter() - t0)
                    assert response.status_code == 200
                print(f"{path} with {devices} devices: median {statistics.median(times)*1e3:.1f}"
                      f" ms, min {min(times)*1e3:.1f} ms over {calls} calls, "
                      f"{len(response.content):,} bytes")
        registry.close()
        storage.close()


def bench_parse(count: int) -> None:
    rng = random.Random(1)
    base = now_ms() - 86_400_000
    # A realistic mix: batches share timestamps, so about one in ten is new.
    distinct = [format_ts(base + rng.randrange(86_400_000)) for _ in range(count // 10)]
    mixed = [rng.choice(distinct) for _ in range(count)]
    unique = [format_ts(base + i * 7) for i in range(count)]
    offsets = [t[:-1] + "+02:00" for t in unique]
    cold = [format_ts(base - i * 61_001) for i in range(count)]  # a new minute every time
    for label, values in (("unique Z", unique), ("unique +02:00", offsets),
                          ("mixed (10 % distinct)", mixed),
                          ("each in another minute (worst case)", cold)):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for text in values:
                parse_ts(text)
            best = min(best, time.perf_counter() - t0)
        print(f"parse_ts {label}: {count:,} in {best*1e3:.1f} ms = "
              f"{count / best / 1e6:.2f} M/s (best of 5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--timestamps", type=int, default=100_000)
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"conditions: {os.cpu_count()} cpus | load {load} | Python "
          f"{platform.python_version()} | fastapi {fastapi.__version__} | pydantic "
          f"{pydantic.VERSION}")
    bench_parse(args.timestamps)
    bench_api(args.devices, args.calls)


if __name__ == "__main__":
    main()
