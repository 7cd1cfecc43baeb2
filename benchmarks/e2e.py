"""End to end: sensor to ``/api/v1/latest`` latency at 10,000 readings/s, confirmation on or off.

``--agents`` simulated edge agents (``benchmarks/fleet.py``: the agent's own buffer and
publisher, in ``--processes`` child processes) sample ``--rate`` readings/s between them,
one reading per metric ``m0``, ``m1``, … every ``--interval-s``, through a real Mosquitto
(the project's config) into a real hub (``fabcity hub serve``, SQLite). ``--confirm on|off``
sets the agents' ``[publish] confirm`` (end-to-end confirmation: the agent keeps a reading
until the hub says it stored it); a tree without that key runs ``off`` only.

A poller asks ``/api/v1/latest?metric=m0`` every ``--poll-ms`` (one series per agent) and
takes, for each newer timestamp it sees, the time from the reading's timestamp to the answer:
the latency from sampling to readable through the API (the poll interval adds up to its
length). A second poller reads the same from the hub's SQLite ``latest`` table directly (the
part before the API), and a subscriber of the broker times each readings message against its
first reading's timestamp (the part before the hub). Printed: p50/p90/p99/max over
``--seconds`` after ``--warmup-s``, the rate stored, the broker's, the hub's and the agents'
CPU from /proc, and at the end whether every sampled reading was stored.

    .venv/bin/python benchmarks/e2e.py [--confirm off] [--rate 10000] [--seconds 30]

Exit status 1 if a reading was lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet
import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import PublishConfig
from fabcity.reading import parse_ts


class Poller:
    """Polls the newest ``m0`` reading of every agent and times each new one it sees."""

    def __init__(self, poll_s: float) -> None:
        self.poll_s = poll_s
        self.latencies_ms: list[float] = []
        self.polls: list[float] = []  # seconds per poll
        self.measuring = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def newest(self) -> list[tuple[str, int]]:
        """(device, ts_ms) of each agent's newest m0 reading."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`newest` holds."""

    def _run(self) -> None:
        newest: dict[str, int] = {}
        while not self.stop.is_set():
            started = time.perf_counter()
            rows = self.newest()
            now_ms = time.time() * 1000
            self.polls.append(time.perf_counter() - started)
            for device, ts_ms in rows:
                if ts_ms > newest.get(device, 0):
                    if self.measuring and device in newest:
                        self.latencies_ms.append(now_ms - ts_ms)
                    newest[device] = ts_ms
            self.stop.wait(max(0.0, self.poll_s - (time.perf_counter() - started)))
        self.close()

    def line(self, what: str) -> str:
        lat = self.latencies_ms
        return (f"{what} ({len(lat):,} readings timed): p50 {fleet.pct(lat, 50):.0f} ms, "
                f"p90 {fleet.pct(lat, 90):.0f} ms, p99 {fleet.pct(lat, 99):.0f} ms, max "
                f"{max(lat, default=float('nan')):.0f} ms; a poll took p50 "
                f"{fleet.pct(self.polls, 50) * 1000:.0f} ms")


class BrokerProbe:
    """Subscribes to every agent's readings (QoS 0) and times each message's arrival from
    the broker against its first reading's timestamp: the part before the hub."""

    def __init__(self, port: int) -> None:
        self.latencies_ms: list[float] = []
        self.measuring = False
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="e2e-probe")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("fabcity/v1/+/+/readings", qos=0)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if self.measuring:
            ts = json.loads(msg.payload)["readings"][0]["ts"]
            self.latencies_ms.append(time.time() * 1000 - parse_ts(ts))

    def line(self) -> str:
        lat = self.latencies_ms
        return (f"to a subscriber of the broker ({len(lat):,} messages timed): p50 "
                f"{fleet.pct(lat, 50):.0f} ms, p90 {fleet.pct(lat, 90):.0f} ms, p99 "
                f"{fleet.pct(lat, 99):.0f} ms, max {max(lat, default=float('nan')):.0f} ms")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class LatestPoller(Poller):
    """Through the API: ``GET /api/v1/latest?metric=m0``."""

    def __init__(self, url: str, poll_s: float) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        super().__init__(poll_s)

    def newest(self) -> list[tuple[str, int]]:
        rows = self.client.get("/api/v1/latest", params={"metric": "m0"}).json()["readings"]
        return [(row["device"], parse_ts(row["ts"])) for row in rows]

    def close(self) -> None:
        self.client.close()


class StoragePoller(Poller):
    """Straight from the hub's SQLite ``latest`` table, through a connection of our own: the
    part of the latency before the API."""

    def __init__(self, db: Path, poll_s: float) -> None:
        self.conn = sqlite3.connect(db, timeout=30, check_same_thread=False)
        super().__init__(poll_s)

    def newest(self) -> list[tuple[str, int]]:
        return [(device, int(ts)) for device, ts in self.conn.execute(
            "SELECT s.device, l.ts_ms FROM latest l JOIN series s ON s.id = l.series "
            "WHERE s.metric = 'm0'")]

    def close(self) -> None:
        self.conn.close()


def quiet() -> None:
    logging.basicConfig(level=logging.ERROR)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--confirm", choices=["on", "off"], default="off")
    parser.add_argument("--rate", type=int, default=10_000, help="readings/s, all agents")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--poll-ms", type=float, default=20)
    parser.add_argument("--warmup-s", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    quiet()
    publish: dict[str, Any] = {}
    if "confirm" in PublishConfig.model_fields:
        publish["confirm"] = args.confirm == "on"
    elif args.confirm == "on":
        print("this tree has no [publish] confirm: end-to-end confirmation is not here yet")
        return 2
    per_tick = round(args.rate * args.interval_s / args.agents)
    metrics = tuple(f"m{i}" for i in range(per_tick))
    rate = per_tick * args.agents / args.interval_s
    print(f"{fleet.conditions()}\nconfirm {args.confirm}"
          f"{'' if publish else ' (this tree has no [publish] confirm)'}; {args.agents} agents "
          f"in {args.processes} processes, {per_tick} readings each every {args.interval_s} s: "
          f"{rate:,.0f} readings/s; /latest polled every {args.poll_ms:g} ms", flush=True)
    with tempfile.TemporaryDirectory(prefix="fabcity-e2e-") as tmp:
        workdir = Path(tmp)
        broker = fleet.start_broker(workdir / "mosquitto")
        hub = fleet.Hub(workdir / "hub", broker.url).start()
        (workdir / "buffers").mkdir()
        share = -(-args.agents // args.processes)
        procs = [fleet.AgentProcess(first, min(share, args.agents - first), workdir / "buffers",
                                    broker.url, metrics, args.interval_s, quiet, publish)
                 for first in range(0, args.agents, share)]
        pollers: list[Poller] = []
        try:
            for proc in procs:
                proc.ask("start")
            deadline = time.monotonic() + 60
            while not all(all(proc.ask("connected")) for proc in procs):
                if time.monotonic() > deadline:
                    raise TimeoutError("the agents did not connect within 60 s")
                time.sleep(0.1)
            for proc in procs:
                proc.ask("sample")
            time.sleep(1)  # the hub creates its tables with the first readings
            pollers = [LatestPoller(hub.url, args.poll_ms / 1000),
                       StoragePoller(hub.db, args.poll_ms / 1000)]
            probe = BrokerProbe(broker.port)
            time.sleep(args.warmup_s)
            assert broker.proc is not None
            meters = {"broker": fleet.CpuMeter(broker.proc.pid), "hub": fleet.CpuMeter(hub.pid),
                      "agents": fleet.CpuMeter(*(proc.pid for proc in procs))}
            stored_before = hub.stored()
            for poller in pollers:
                poller.measuring = True
            probe.measuring = True
            time.sleep(args.seconds)
            probe.measuring = False
            for poller in pollers:
                poller.measuring = False
            probe.close()
            stored_rate = (hub.stored() - stored_before) / args.seconds
            cpu = ", ".join(f"{name} {meter.percent():.0f}" for name, meter in meters.items())
            buffered = sum(proc.ask("buffered") for proc in procs)
            print(f"over {args.seconds:g} s, latency from the reading's timestamp:\n  "
                  + pollers[0].line("to /api/v1/latest") + "\n  "
                  + pollers[1].line("to the store's latest table") + "\n  " + probe.line(),
                  flush=True)
            print(f"stored {stored_rate:,.0f} readings/s; CPU % of one core: {cpu}; "
                  f"{buffered:,} readings in the agents' buffers at the end; load "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            for proc in procs:
                proc.ask("stop_sampling")
            total = sum(proc.ask("sampled") for proc in procs)
            deadline = time.monotonic() + 120
            while hub.stored() < total and time.monotonic() < deadline:
                time.sleep(0.2)
            stored = hub.stored()
            late = sum(proc.ask("stats")[2] for proc in procs)
            print(f"end: {total:,} sampled, {stored:,} stored ({total - stored:,} lost); "
                  f"{late} sampler ticks late", flush=True)
        finally:
            for poller in pollers:
                poller.stop.set()
            for proc in procs:
                proc.close()
            hub.stop()
            broker.stop()
    return 0 if stored == total else 1


if __name__ == "__main__":
    sys.exit(main())
