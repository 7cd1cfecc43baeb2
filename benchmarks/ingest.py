"""Ingest throughput and latency: publisher -> real Mosquitto -> hub ingest -> SQLite.

Prints, in one run and on the same broker:
  * the machine's ceiling: paho publisher -> Mosquitto -> a paho subscriber that does nothing
    (QoS 1, acking each message), i.e. what any MQTT consumer in Python gets here;
  * the hub: readings/s durably stored (acked only after the SQLite commit), with
    50-reading messages and with one reading per message;
  * end-to-end latency p50/p99 (publish -> committed) at full speed and at a paced rate.

The publisher runs in its own process, like an edge agent. Run: ``make bench`` or
``.venv/bin/python benchmarks/ingest.py [--readings 500000]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from importlib.metadata import version as version_of
from pathlib import Path

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

TOPIC = "fabcity/v1/bench/pi-{n}/readings"
PUBLISHERS_INFLIGHT = 1000
METRICS = ("temperature", "humidity", "pm2_5", "pm10", "co2", "noise")


def publish(port: int, messages: int, per_message: int, rate_msg_s: float | None,
            device: int, start: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Child process: publish ``messages`` QoS 1 batches as one edge device would."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{device}")
    client.max_inflight_messages_set(PUBLISHERS_INFLIGHT)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start.wait()
    topic = TOPIC.format(n=device)
    infos = []
    t0 = time.perf_counter()
    base_ms = now_ms() - 3_600_000  # identities must not collide: one timestamp per message
    for i in range(messages):
        if rate_msg_s:
            delay = t0 + i / rate_msg_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        readings = [Reading("bench", f"pi-{device}", f"s{j // 6}", METRICS[j % 6], 1.0 + j,
                            base_ms + i) for j in range(per_message)]
        # ``seq`` carries the send time, so the hub side can measure publish -> commit.
        payload = encode_batch(now_ms(), readings)
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


class TimedStorage(SqliteStorage):
    """SQLite storage that records when each batch became durable (benchmark only)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stored = 0
        self.first_write: float | None = None
        self.last_write = 0.0

    def write(self, readings: Sequence[Reading]) -> int:
        n = super().write(readings)
        now = time.perf_counter()
        self.first_write = self.first_write or now
        self.last_write = now
        self.stored += n
        return n


class LatencyIngest(Ingest):
    """Ingest that notes publish->commit latency per message from the ``seq`` field."""

    latencies_ms: list[int]

    def _decode(self, msg, seen, kinds):  # type: ignore[no-untyped-def]
        readings = super()._decode(msg, seen, kinds)
        self._pending_sent.append(msg.payload[7:msg.payload.index(b",")])  # {"seq":<ms>,
        return readings

    def _store(self, readings):  # type: ignore[no-untyped-def]
        ok = super()._store(readings)
        done = now_ms()
        self.latencies_ms.extend(done - int(sent) for sent in self._pending_sent)
        self._pending_sent.clear()
        return ok


def run_hub(broker: Mosquitto, workdir: Path, messages: int, per_message: int,
            rate_msg_s: float | None, publishers: int = 1) -> dict[str, float]:
    """Start an ingest on a fresh database and time ``messages`` x ``per_message`` readings."""
    db = workdir / f"hub-{per_message}-{rate_msg_s}-{time.time_ns()}.db"
    storage = TimedStorage(db)
    registry = DeviceRegistry(workdir / f"registry-{time.time_ns()}.db")
    mqtt = HubMqttConfig(url=broker.url, client_id=f"bench-hub-{time.time_ns()}")
    ingest = LatencyIngest(parse_broker_url(broker.url), mqtt, IngestConfig(), storage,
                           registry, HubMetrics(), protocol="v5")
    ingest.latencies_ms = []
    ingest._pending_sent = []  # type: ignore[attr-defined]
    ingest.start()
    while not ingest.connected:
        time.sleep(0.05)
    time.sleep(0.3)  # subscription settles
    start = mp.Event()
    per_pub = messages // publishers
    procs = [mp.Process(target=publish, args=(broker.port, per_pub, per_message,
                                              rate_msg_s and rate_msg_s / publishers, d, start))
             for d in range(publishers)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    start.set()
    expected = per_pub * publishers * per_message
    deadline = time.monotonic() + 600
    while storage.stored < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = (storage.last_write or time.perf_counter()) - t0
    for p in procs:
        p.join(60)
    ingest.stop()
    lat = sorted(ingest.latencies_ms) or [0]
    storage.close()
    registry.close()
    return {
        "readings": storage.stored, "expected": expected, "seconds": elapsed,
        "readings_s": storage.stored / elapsed,
        "messages_s": storage.stored / per_message / elapsed,
        "p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99) - 1],
    }


def ceiling(broker: Mosquitto, messages: int, per_message: int) -> float:
    """Messages/s from a paho publisher to a paho QoS 1 subscriber that does nothing."""
    received = 0
    done = threading.Event()

    def on_message(_c, _u, _m):  # type: ignore[no-untyped-def]
        nonlocal received
        received += 1
        if received >= messages:
            done.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling",
                      protocol=paho.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("ceiling/#", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    payload = encode_batch(0, [Reading("b", "d", f"s{j // 6}", METRICS[j % 6], 1.0, now_ms())
                               for j in range(per_message)])
    start = mp.Event()
    proc = mp.Process(target=_raw_publish, args=(broker.port, messages, payload, start))
    proc.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    start.set()
    done.wait(300)
    elapsed = time.perf_counter() - t0
    proc.join(60)
    sub.disconnect()
    sub.loop_stop()
    return received / elapsed


def _raw_publish(port: int, messages: int, payload: bytes, start) -> None:  # type: ignore[no-untyped-def]
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling-pub")
    client.max_inflight_messages_set(PUBLISHERS_INFLIGHT)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start.wait()
    infos = [client.publish("ceiling/x", payload, qos=1) for _ in range(messages)]
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def conditions() -> str:
    """The machine this ran on."""
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    version = mosq.splitlines()[0] if mosq else "mosquitto ?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.node()} | {os.cpu_count()} cpus | load {load} | "
            f"Python {platform.python_version()} | paho-mqtt {version_of('paho-mqtt')} | "
            f"{version} | SQLite {sqlite3.sqlite_version}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=500_000,
                        help="readings in the 50-per-message run (default 500,000)")
    parser.add_argument("--single", type=int, default=50_000,
                        help="messages in the one-reading-per-message run (default 50,000)")
    args = parser.parse_args()
    print("conditions:", conditions())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir / "mosquitto").start()
        try:
            batch_msgs = args.readings // 50
            c50 = ceiling(broker, batch_msgs, 50)
            c1 = ceiling(broker, args.single, 1)
            print(f"ceiling  paho -> mosquitto -> paho (QoS 1): {c50:,.0f} msg/s with "
                  f"50-reading messages (= {c50 * 50:,.0f} readings/s), {c1:,.0f} msg/s with "
                  f"1-reading messages")
            rows = [
                ("50 readings/message, full speed", run_hub(broker, workdir, batch_msgs, 50, None)),
                ("1 reading/message, full speed", run_hub(broker, workdir, args.single, 1, None)),
                ("50 readings/message, paced 200 msg/s", run_hub(broker, workdir, 2000, 50, 200)),
                ("1 reading/message, paced 1000 msg/s", run_hub(broker, workdir, 5000, 1, 1000)),
            ]
        finally:
            broker.stop()
    print(f"{'hub ingest -> SQLite (acked after commit)':<40} {'stored':>10} {'readings/s':>12} "
          f"{'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in rows:
        lost = "" if r["readings"] == r["expected"] else f"  (expected {r['expected']:,})"
        print(f"{name:<40} {r['readings']:>10,.0f} {r['readings_s']:>12,.0f} "
              f"{r['messages_s']:>9,.0f} {r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f}{lost}")
    print("conditions after:", conditions())


if __name__ == "__main__":
    main()
