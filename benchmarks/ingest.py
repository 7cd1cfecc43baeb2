"""Ingest throughput and latency: publisher -> real Mosquitto -> hub ingest -> SQLite.

Two ways to feed the hub, each compared with the machine's ceiling measured the same way
(a paho subscriber that does nothing but receive, QoS 1):

* **live**: a publisher process (like an edge agent) sends while the hub receives; on a
  2-core machine publisher, broker and hub share the cores;
* **backlog**: the messages are queued at the broker for the hub's persistent session first
  (the hub was down), then the hub drains them alone: the hub's own capacity.

The hub acks each message only after its batch is committed to SQLite. Latency is publish ->
commit, measured at full speed and at a paced rate. Run: ``make bench`` or
``.venv/bin/python benchmarks/ingest.py [--readings 500000] [--single 50000]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version as version_of
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabcity.codec import encode_batch
from fabcity.mqtt import parse_broker_url
from fabcity.reading import Reading, now_ms
from hub.config import HubMqttConfig, IngestConfig
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto

METRICS = ("temperature", "humidity", "pm2_5", "pm10", "co2", "noise")
PUBLISHER_INFLIGHT = 1000


@dataclass
class Run:
    """One measured run."""

    name: str
    items: int  # readings stored (hub) or messages received (ceiling)
    expected: int
    seconds: float
    per_message: int
    latencies_ms: list[int]

    @property
    def readings_s(self) -> float:
        return self.items / self.seconds

    @property
    def messages_s(self) -> float:
        return self.items / self.per_message / self.seconds

    def percentile(self, q: float) -> float:
        lat = sorted(self.latencies_ms)
        return lat[min(len(lat) - 1, int(len(lat) * q))] if lat else float("nan")


SEQ_PLACEHOLDER = 1_000_000_000_000  # 13 digits, like a send time in ms


def payloads(count: int, per_message: int, device: str) -> list[bytes]:
    """Encoded messages with unique reading identities, built before the clock starts."""
    base_ms = now_ms() - 3_600_000
    return [encode_batch(SEQ_PLACEHOLDER, [
        Reading("bench", device, f"s{j // 6}", METRICS[j % 6], 1.0 + j, base_ms + i)
        for j in range(per_message)]) for i in range(count)]


def stamped(payload: bytes) -> bytes:
    """The payload with ``seq`` set to the send time, for the latency measure."""
    return b'{"seq":%d' % now_ms() + payload[20:]


def publish(port: int, topic: str, count: int, per_message: int, rate_msg_s: float | None,
            start: Any) -> None:
    """Child process: publish ``count`` QoS 1 messages as an edge agent would."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
    client.connect("127.0.0.1", port)
    client.loop_start()
    messages = payloads(count, per_message, "pi-1")
    start.wait()
    t0 = time.perf_counter()
    pending = []
    for i, payload in enumerate(messages):
        if rate_msg_s:
            delay = t0 + i / rate_msg_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        pending.append(client.publish(topic, stamped(payload), qos=1))
        if len(pending) > 2 * PUBLISHER_INFLIGHT:  # keep paho's queue short
            pending.pop(0).wait_for_publish(60)
    for info in pending:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def start_publisher(broker: Mosquitto, topic: str, count: int, per_message: int,
                    rate_msg_s: float | None = None) -> tuple[mp.Process, Any]:
    start = mp.Event()
    proc = mp.Process(target=publish, args=(broker.port, topic, count, per_message, rate_msg_s,
                                            start))
    proc.start()
    time.sleep(0.5 + count * per_message / 200_000)  # connected, payloads built
    return proc, start


class TimedStorage(SqliteStorage):
    """SQLite storage that notes when the last batch became durable (benchmark only)."""

    stored = 0
    last_write = 0.0

    def write(self, readings: Sequence[Reading]) -> int:
        n = super().write(readings)
        self.last_write = time.perf_counter()
        self.stored += n
        return n


class LatencyIngest(Ingest):
    """Ingest that notes publish -> commit latency per message from its ``seq`` field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latencies_ms: list[int] = []
        self._sent: list[int] = []

    def _decode(self, msg, seen, kinds):  # type: ignore[no-untyped-def]
        self._sent.append(int(msg.payload[7:msg.payload.index(b",")]))  # {"seq":<ms>,
        return super()._decode(msg, seen, kinds)

    def _store(self, readings):  # type: ignore[no-untyped-def]
        ok = super()._store(readings)
        done = now_ms()
        sent, self._sent = self._sent, []
        self.latencies_ms.extend(done - ms for ms in sent)
        return ok


def hub_run(name: str, broker: Mosquitto, workdir: Path, messages: int, per_message: int,
            mode: str, rate_msg_s: float | None = None) -> Run:
    """Time the hub storing ``messages`` x ``per_message`` readings."""
    tag = time.time_ns()
    storage = TimedStorage(workdir / f"hub-{tag}.db")
    registry = DeviceRegistry(workdir / f"registry-{tag}.db")
    mqtt = HubMqttConfig(url=broker.url, client_id=f"bench-hub-{tag}")

    def make_ingest() -> LatencyIngest:
        ingest = LatencyIngest(parse_broker_url(broker.url), mqtt, IngestConfig(), storage,
                               registry, HubMetrics(), protocol="v5")
        ingest.start()
        while not ingest.connected:
            time.sleep(0.05)
        time.sleep(0.3)  # subscription acknowledged
        return ingest

    topic = f"fabcity/v1/bench/pi-{tag}/readings"
    ingest = make_ingest()
    if mode == "backlog":
        ingest.stop()  # the session stays at the broker and queues what follows
        proc, start = start_publisher(broker, topic, messages, per_message)
        start.set()
        proc.join(600)
        ingest = make_ingest()
        t0 = time.perf_counter()
    else:
        proc, start = start_publisher(broker, topic, messages, per_message, rate_msg_s)
        t0 = time.perf_counter()
        start.set()
    expected = messages * per_message
    deadline = time.monotonic() + 600
    while storage.stored < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = storage.last_write - t0
    if mode != "backlog":
        proc.join(60)
    ingest.stop()
    storage.close()
    registry.close()
    latencies = [] if mode == "backlog" else ingest.latencies_ms
    return Run(name, storage.stored, expected, elapsed, per_message, latencies)


def ceiling_run(name: str, broker: Mosquitto, messages: int, per_message: int, mode: str) -> Run:
    """Messages received by a paho QoS 1 subscriber that does nothing else."""
    received = 0
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received
        received += 1
        if received >= messages:
            done.set()

    tag = time.time_ns()
    topic = f"ceiling/{tag}"

    def connect(clean: bool) -> paho.Client:
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-ceiling-{tag}",
                          protocol=paho.MQTTv311, clean_session=clean)
        sub.on_message = on_message
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe(topic, qos=1)
        sub.loop_start()
        time.sleep(0.3)
        return sub

    sub = connect(clean=mode != "backlog")
    if mode == "backlog":
        sub.disconnect()
        sub.loop_stop()
        proc, start = start_publisher(broker, topic, messages, per_message)
        start.set()
        proc.join(600)
        t0 = time.perf_counter()
        sub = connect(clean=False)
    else:
        proc, start = start_publisher(broker, topic, messages, per_message)
        t0 = time.perf_counter()
        start.set()
    done.wait(600)
    elapsed = time.perf_counter() - t0
    proc.join(60)
    sub.disconnect()
    sub.loop_stop()
    return Run(name, received * per_message, messages * per_message, elapsed, per_message, [])


def conditions() -> str:
    """The machine this ran on."""
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    broker = mosq.splitlines()[0] if mosq else "mosquitto ?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cpus | load {load} | Python {platform.python_version()} | "
            f"paho-mqtt {version_of('paho-mqtt')} | {broker} | SQLite {sqlite3.sqlite_version}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=500_000,
                        help="readings in the 50-per-message runs (default 500,000)")
    parser.add_argument("--single", type=int, default=30_000,
                        help="messages in the one-reading-per-message runs (default 30,000)")
    args = parser.parse_args()
    print("conditions:", conditions(), flush=True)
    batches = args.readings // 50
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir / "mosquitto").start()
        try:
            for mode in ("live", "backlog"):
                for per, count in ((50, batches), (1, args.single)):
                    shape = f"{per} reading{'s' if per > 1 else ''}/msg"
                    runs.append(ceiling_run(f"ceiling, {mode}, {shape}", broker, count, per,
                                            mode))
                    runs.append(hub_run(f"hub, {mode}, {shape}", broker, workdir, count, per,
                                        mode))
                    print(f"  {runs[-1].name}: done", flush=True)
            runs.append(hub_run("hub, paced 200 msg/s, 50 readings/msg", broker, workdir, 2000,
                                50, "live", rate_msg_s=200))
            runs.append(hub_run("hub, paced 1,000 msg/s, 1 reading/msg", broker, workdir, 5000,
                                1, "live", rate_msg_s=1000))
        finally:
            broker.stop()
    print(f"\n{'run':<42} {'readings/s':>11} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7}  note")
    ceilings = {run.name.replace("ceiling", "hub"): run for run in runs
                if run.name.startswith("ceiling")}
    for run in runs:
        note = "" if run.items == run.expected else f"LOST: {run.expected - run.items:,}"
        if run.name in ceilings:
            note = note or f"{run.messages_s / ceilings[run.name].messages_s:.0%} of the ceiling"
        p50, p99 = run.percentile(0.5), run.percentile(0.99)
        lat = f"{p50:>7.0f} {p99:>7.0f}" if run.latencies_ms else f"{'-':>7} {'-':>7}"
        print(f"{run.name:<42} {run.readings_s:>11,.0f} {run.messages_s:>8,.0f} {lat}  {note}")
    print("\nconditions after:", conditions())


if __name__ == "__main__":
    main()
