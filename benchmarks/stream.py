"""Live stream under load: a real Mosquitto, a real hub ingest (SQLite) and the API on a real
uvicorn server, with N streaming clients (raw sockets, asyncio, one process of their own) while
an edge-like publisher (its own process) sends QoS 1 batches at a steady rate.

Two runs with the same feed: no clients, then N clients (a quarter unfiltered, the rest with
site/device/metric filters that match the feed). Prints the storing rate of each run (readings
stored / time from first publish to last stored), the events delivered per second to the
clients, whether every client got every reading, and the hub process's RSS and CPU time.

Run: ``.venv/bin/python benchmarks/stream.py [--clients 200] [--rate 100] [--per-message 10]
[--seconds 10]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version as version_of
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabcity.mqtt import parse_broker_url
from fabcity.reading import now_ms
from hub.api import create_app
from hub.config import HubMqttConfig, IngestConfig
from hub.context import HubContext
from hub.ingest import Ingest
from hub.live import LiveBroadcaster
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.hub.sse import publish_steady, run_clients, serving, wait_subscribers
from tests.servers import Mosquitto

PATHS = ["/api/v1/stream", "/api/v1/stream?site=lab&device={device}",
         "/api/v1/stream?metric=sequence", "/api/v1/stream?device={device}"]


def conditions() -> str:
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    return (f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} "
            f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; Python "
            f"{platform.python_version()}; {mosquitto.splitlines()[0] if mosquitto else '?'}; "
            f"SQLite {sqlite3.sqlite_version}; uvicorn {version_of('uvicorn')}, starlette "
            f"{version_of('starlette')}, paho-mqtt {version_of('paho-mqtt')}")


def wait(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.01)


def run(args: argparse.Namespace, clients: int, device: str, port: int, broker: Mosquitto,
        storage: SqliteStorage, live: LiveBroadcaster) -> tuple[float, float, int, float]:
    """One run: (storing rate, delivered events/s, clients that got everything, CPU s)."""
    mp = multiprocessing.get_context("spawn")
    messages = int(args.rate * args.seconds)
    expected = messages * args.per_message
    results, connected = mp.Queue(), mp.Event()
    proc = None
    if clients:
        paths = [PATHS[i % len(PATHS)].format(device=device) for i in range(clients)]
        proc = mp.Process(target=run_clients, args=(port, paths, expected,
                                                    args.seconds * 3 + 20, results, connected))
        proc.start()
        connected.wait(30)
        wait_subscribers(live, clients, timeout_s=30)
    before = storage.count()
    cpu0 = sum(psutil.Process().cpu_times()[:2])
    started = mp.Value("d", 0.0)
    publisher = mp.Process(target=publish_steady, args=(
        broker.port, device, messages, args.per_message, args.rate, now_ms() - 60_000, started))
    publisher.start()
    wait(lambda: storage.count() >= before + expected, args.seconds * 3 + 30)
    elapsed = time.time() - started.value
    cpu = sum(psutil.Process().cpu_times()[:2]) - cpu0
    publisher.join(30)
    complete, delivered_s = 0, 0.0
    if proc is not None:
        got = results.get(timeout=args.seconds * 3 + 30)
        proc.join(10)
        complete = sum(1 for g in got if g == (expected, 0))
        delivered_s = sum(g[0] for g in got) / elapsed
    return expected / elapsed, delivered_s, complete, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100, help="messages a second")
    parser.add_argument("--per-message", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(conditions())
    print(f"feed: {args.rate:.0f} msg/s x {args.per_message} readings = "
          f"{args.rate * args.per_message:.0f} readings/s for {args.seconds:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto").start()
        storage = SqliteStorage(Path(tmp) / "hub.db")
        live = LiveBroadcaster()
        ctx = HubContext(storage=storage, registry=DeviceRegistry(Path(tmp) / "reg.db"),
                         live=live)
        ingest = Ingest(parse_broker_url(broker.url), HubMqttConfig(url=broker.url),
                        IngestConfig(), storage, ctx.registry, HubMetrics(), live=live)
        ingest.start()
        wait(lambda: ingest.connected, 10)
        time.sleep(0.3)
        try:
            with serving(create_app(ctx)) as url:
                port = int(url.rsplit(":", 1)[1])
                for clients, device in ((0, "pi-alone"), (args.clients, "pi-watched")):
                    rss0 = psutil.Process().memory_info().rss / 1e6
                    rate, delivered, complete, cpu = run(args, clients, device, port, broker,
                                                         storage, live)
                    rss = psutil.Process().memory_info().rss / 1e6
                    print(f"{clients:4d} clients: stored {rate:8.0f} readings/s, delivered "
                          f"{delivered:9.0f} events/s, {complete}/{clients} clients got "
                          f"every reading, hub CPU {cpu:.1f} s, RSS {rss0:.0f} -> {rss:.0f} MB")
        finally:
            ingest.stop()
            storage.close()
            broker.stop()


if __name__ == "__main__":
    main()
