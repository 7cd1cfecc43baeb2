"""Ingest throughput and latency: publisher -> real Mosquitto -> hub ingest -> storage, on
every back-end (SQLite; InfluxDB 1.x on a real ``influxd``; the ``influxdb`` back-end, whose
v2 write path goes to a real VictoriaMetrics).

Two ways to feed the hub, each compared with the machine's ceiling measured the same way
(a bare paho subscriber connected like the hub, MQTT v5 and QoS 1, that only acks each
message as it arrives):

* **live**: a publisher process (like an edge agent) sends while the hub receives; on a
  2-core machine publisher, broker and hub share the cores;
* **backlog**: the messages are queued at the broker for the hub's persistent session first
  (the hub was down), then the hub drains them alone: the hub's own capacity.

The hub acks each message only after its batch is durable in storage. Latency is publish ->
commit, measured at full speed and at a paced rate. For the InfluxDB back-ends the same run
measures the database's own ceiling: the same readings as 5,000-line batches POSTed straight
to its write endpoint by one client, and prints the hub's share of it.

Clocks start before the hub connects (in the backlog runs, before it can take the first
message); what was stored is counted in storage afterwards, and the script exits 1 if any
reading is missing, or if one SQLite process misses its targets (>= 100,000 readings/s
from a backlog of 50-reading messages; >= 80 % of the MQTT ceiling with one per message).
Run: ``make bench`` or
``.venv/bin/python benchmarks/ingest.py [--backend all] [--readings 500000] [--single 30000]``.

``--workers 1,2,4`` measures instead N ``fabcity hub ingest`` processes sharing the readings
through an MQTT v5 shared subscription, with each process's CPU
(:mod:`benchmarks.ingest_workers`).
"""

from __future__ import annotations

import argparse
import http.client
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
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabcity.codec import encode_batch
from fabcity.mqtt import parse_broker_url
from fabcity.reading import Reading, now_ms
from hub.config import HubMqttConfig, IngestConfig
from hub.ingest import MAX_PACKET_BYTES, SESSION_EXPIRY_S, Ingest
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery, Storage
from hub.storage.influxdb1 import InfluxDB1Storage
from hub.storage.influxdb2 import InfluxDB2Storage
from hub.storage.lineprotocol import reading_lines
from hub.storage.sqlite import SqliteStorage
from tests.servers import InfluxDB1, Mosquitto, VictoriaMetrics

BACKENDS = ("sqlite", "influxdb1", "influxdb")

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
            start: Any, device: str) -> None:
    """Child process: publish ``count`` QoS 1 messages as an edge agent would."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
    client.connect("127.0.0.1", port)
    client.loop_start()
    messages = payloads(count, per_message, device)
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
                    rate_msg_s: float | None = None, device: str = "pi-1",
                    ) -> tuple[mp.Process, Any]:
    start = mp.Event()
    proc = mp.Process(target=publish, args=(broker.port, topic, count, per_message, rate_msg_s,
                                            start, device))
    proc.start()
    time.sleep(0.5 + count * per_message / 200_000)  # connected, payloads built
    return proc, start


class Servers:
    """The real servers a run needs, started once."""

    def __init__(self, workdir: Path, backends: Sequence[str]) -> None:
        self.influxdb1 = InfluxDB1(workdir / "influxdb").start() \
            if {"influxdb1", "influxdb"} & set(backends) else None
        self.vm = VictoriaMetrics(workdir / "vm").start() if "influxdb" in backends else None

    def stop(self) -> None:
        for server in (self.influxdb1, self.vm):
            if server is not None:
                server.stop()


def open_storage(backend: str, servers: Servers, workdir: Path, tag: int) -> Storage:
    """A fresh, empty store of ``backend`` for one run."""
    if backend == "sqlite":
        return SqliteStorage(workdir / f"hub-{tag}.db")
    if backend == "influxdb1":
        assert servers.influxdb1 is not None
        return InfluxDB1Storage(url=servers.influxdb1.url, database=f"bench{tag}")
    assert servers.vm is not None and servers.influxdb1 is not None
    return InfluxDB2Storage(url=servers.vm.url, token="bench", org="bench",
                            bucket=f"bench{tag}", query_url=servers.influxdb1.url)


def timed(storage: Storage) -> Storage:
    """Wrap ``write`` to note how many readings were written and when the last became
    durable (benchmark only)."""
    write = storage.write
    storage.bench_written = 0  # type: ignore[attr-defined]
    storage.bench_last = 0.0  # type: ignore[attr-defined]

    def timed_write(readings: Sequence[Reading]) -> int | None:
        n = write(readings)
        storage.bench_last = time.perf_counter()  # type: ignore[attr-defined]
        storage.bench_written += len(readings) if n is None else n  # type: ignore[attr-defined]
        return n

    storage.write = timed_write  # type: ignore[method-assign]
    return storage


def stored_count(backend: str, storage: Storage, servers: Servers, device: str) -> int:
    """Readings of ``device`` the store really holds, counted in the store itself."""
    if backend == "influxdb":  # VictoriaMetrics has no InfluxQL: count what it exports
        assert servers.vm is not None
        return sum(len(series["values"]) for series in  # type: ignore[arg-type]
                   servers.vm.export(f'{{device="{device}"}}'))
    q = ReadingQuery(0, now_ms() + 86_400_000, device=device, every_ms=10 * 86_400_000 * 365,
                     agg="count", limit=10**9)
    return int(sum(r.value for r in storage.query(q)))


class LatencyIngest(Ingest):
    """Ingest that notes publish -> commit latency per message from its ``seq`` field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latencies_ms: list[int] = []
        self._sent: list[int] = []

    def _decode(self, msg, *args):  # type: ignore[no-untyped-def]
        self._sent.append(int(msg.payload[7:msg.payload.index(b",")]))  # {"seq":<ms>,
        return super()._decode(msg, *args)

    def _store(self, readings):  # type: ignore[no-untyped-def]
        ok = super()._store(readings)
        done = now_ms()
        sent, self._sent = self._sent, []
        self.latencies_ms.extend(done - ms for ms in sent)
        return ok


def hub_run(name: str, broker: Mosquitto, workdir: Path, messages: int, per_message: int,
            mode: str, backend: str, servers: Servers, rate_msg_s: float | None = None) -> Run:
    """Time the hub storing ``messages`` x ``per_message`` readings."""
    tag = time.time_ns()
    storage = timed(open_storage(backend, servers, workdir, tag))
    registry = DeviceRegistry(workdir / f"registry-{tag}.db")
    mqtt = HubMqttConfig(url=broker.url, client_id=f"bench-hub-{tag}")

    def make_ingest(settle: bool) -> LatencyIngest:
        ingest = LatencyIngest(parse_broker_url(broker.url), mqtt, IngestConfig(), storage,
                               registry, HubMetrics(), protocol="v5")
        ingest.start()
        while not ingest.connected:
            time.sleep(0.01)
        if settle:
            time.sleep(0.3)  # subscription acknowledged before anything is published
        return ingest

    device = f"pi-{tag}"
    topic = f"fabcity/v1/bench/{device}/readings"
    ingest = make_ingest(settle=True)
    if mode == "backlog":
        ingest.stop()  # the session stays at the broker and queues what follows
        proc, start = start_publisher(broker, topic, messages, per_message, device=device)
        start.set()
        proc.join(600)
        t0 = time.perf_counter()  # before the hub connects: draining starts on connect
        ingest = make_ingest(settle=False)
    else:
        proc, start = start_publisher(broker, topic, messages, per_message, rate_msg_s,
                                      device=device)
        t0 = time.perf_counter()
        start.set()
    expected = messages * per_message
    deadline = time.monotonic() + 600
    while storage.bench_written < expected and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    elapsed = storage.bench_last - t0  # type: ignore[attr-defined]
    if mode != "backlog":
        proc.join(60)
    ingest.stop()
    forget_session(broker, mqtt.client_id)
    found = stored_count(backend, storage, servers, device)
    storage.close()
    registry.close()
    latencies = [] if mode == "backlog" else ingest.latencies_ms
    return Run(name, found, expected, elapsed, per_message, latencies)


def influx_ceiling_run(name: str, host_port: tuple[str, int], path: str, readings: int,
                       batch_lines: int = 5_000) -> Run:
    """The database's own ceiling: ``readings`` lines in ``batch_lines`` batches, POSTed
    one after the other over one keep-alive connection, as fast as it answers."""
    tag = time.time_ns()
    base_ms = now_ms() - 3_600_000
    rows = [Reading("bench", f"ceiling-{tag}", f"s{j // 6}", METRICS[j % 6], 1.0 + j,
                    base_ms + i) for i in range(readings // 50) for j in range(50)]
    lines = reading_lines(rows)
    bodies = [b"\n".join(lines[i:i + batch_lines]) for i in range(0, len(lines), batch_lines)]
    conn = http.client.HTTPConnection(*host_port, timeout=60)
    t0 = time.perf_counter()
    for body in bodies:
        conn.request("POST", path, body, {"Content-Type": "text/plain; charset=utf-8"})
        response = conn.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"{path}: HTTP {response.status}")
    elapsed = time.perf_counter() - t0
    conn.close()
    return Run(name, len(lines), len(rows), elapsed, 50, [])


def ceiling_run(name: str, broker: Mosquitto, messages: int, per_message: int, mode: str) -> Run:
    """The MQTT ceiling: messages received by a bare paho subscriber connected like the hub
    (MQTT v5, persistent session, the hub's Receive Maximum, QoS 1, manual acks) that does
    nothing per message but ack it at once, fed by the same publisher as the hub runs."""
    received = 0
    done = threading.Event()
    tag = time.time_ns()
    topic = f"fabcity/v1/bench/ceiling-{tag}/readings"

    def on_message(client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        nonlocal received
        client.ack(msg.mid, msg.qos)
        received += 1
        if received >= messages:
            done.set()

    def connect(settle: bool = True) -> paho.Client:
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-ceiling-{tag}",
                          protocol=paho.MQTTv5, manual_ack=True)
        sub.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = IngestConfig().receive_maximum
        props.MaximumPacketSize = MAX_PACKET_BYTES
        sub.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        sub.subscribe(topic, qos=1)
        sub.loop_start()
        if settle:
            time.sleep(0.3)  # subscription acknowledged before anything is published
        return sub

    sub = connect()
    if mode == "backlog":
        sub.disconnect()  # the session stays at the broker and queues what follows
        sub.loop_stop()
        proc, start = start_publisher(broker, topic, messages, per_message)
        start.set()
        proc.join(600)
        t0 = time.perf_counter()  # before connecting: delivery starts on connect
        sub = connect(settle=False)
    else:
        proc, start = start_publisher(broker, topic, messages, per_message)
        t0 = time.perf_counter()
        start.set()
    done.wait(600)
    elapsed = time.perf_counter() - t0
    proc.join(60)
    sub.disconnect()
    sub.loop_stop()
    forget_session(broker, f"bench-ceiling-{tag}")
    return Run(name, received * per_message, messages * per_message, elapsed, per_message, [])


def forget_session(broker: Mosquitto, client_id: str) -> None:
    """End a run's persistent session at the broker: left behind, it would go on queueing
    every later run's messages and slow the broker down for the runs that follow."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect("127.0.0.1", broker.port, clean_start=True, properties=props)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()


def conditions(servers: Servers | None = None) -> str:
    """The machine this ran on."""
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    broker = mosq.splitlines()[0] if mosq else "mosquitto ?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = (f"{os.cpu_count()} cpus | load {load} | Python {platform.python_version()} | "
            f"paho-mqtt {version_of('paho-mqtt')} | {broker} | SQLite {sqlite3.sqlite_version}")
    if servers is not None and servers.influxdb1 is not None:
        ping = http.client.HTTPConnection("127.0.0.1", servers.influxdb1.port, timeout=5)
        ping.request("GET", "/ping")
        text += f" | InfluxDB {ping.getresponse().getheader('X-Influxdb-Version')}"
        ping.close()
    if servers is not None and servers.vm is not None:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"],
                             capture_output=True, text=True)
        text += f" | VictoriaMetrics {out.stdout.strip() or '?'}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=(*BACKENDS, "all"), default="all",
                        help="storage back-end(s) to measure (default: all)")
    parser.add_argument("--readings", type=int, default=500_000,
                        help="readings in the 50-per-message runs (default 500,000)")
    parser.add_argument("--single", type=int, default=30_000,
                        help="messages in the one-reading-per-message runs (default 30,000)")
    parser.add_argument("--workers", metavar="N[,N…]",
                        help="instead: N fabcity hub ingest processes on one shared "
                             "subscription, e.g. 1,2,4 (50 readings/msg, --readings each)")
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    if args.workers:
        return workers_main(backends, [int(n) for n in args.workers.split(",")], args.readings)
    batches = args.readings // 50
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir / "mosquitto").start()
        servers = Servers(workdir, backends)
        print("conditions:", conditions(servers), flush=True)
        try:
            for mode in ("live", "backlog"):
                for per, count in ((50, batches), (1, args.single)):
                    shape = f"{per} reading{'s' if per > 1 else ''}/msg"
                    runs.append(ceiling_run(f"mqtt ceiling, {mode}, {shape}", broker, count,
                                            per, mode))
                    for backend in backends:
                        runs.append(hub_run(f"{backend}: hub, {mode}, {shape}", broker,
                                            workdir, count, per, mode, backend, servers))
                        print(f"  {runs[-1].name}: done", flush=True)
            for backend in backends:
                runs.append(hub_run(f"{backend}: hub, paced 200 msg/s, 50 readings/msg", broker,
                                    workdir, 2000, 50, "live", backend, servers,
                                    rate_msg_s=200))
                runs.append(hub_run(f"{backend}: hub, paced 1,000 msg/s, 1 reading/msg", broker,
                                    workdir, 5000, 1, "live", backend, servers,
                                    rate_msg_s=1000))
            if servers.influxdb1 is not None and "influxdb1" in backends:
                servers.influxdb1.query("CREATE DATABASE ceiling")
                runs.append(influx_ceiling_run(
                    "influxdb1: InfluxDB's own ceiling, 5,000-line POSTs",
                    ("127.0.0.1", servers.influxdb1.port), "/write?db=ceiling&precision=ms",
                    args.readings))
            if servers.vm is not None:
                runs.append(influx_ceiling_run(
                    "influxdb: VictoriaMetrics' own ceiling, 5,000-line POSTs",
                    ("127.0.0.1", servers.vm.port),
                    "/api/v2/write?org=o&bucket=ceiling&precision=ms", args.readings))
        finally:
            servers.stop()
            broker.stop()
    return report(runs, backends)


def workers_main(backends: Sequence[str], counts: Sequence[int], readings: int) -> int:
    """``--workers``: drain ``readings`` with each number of ingest worker processes."""
    from benchmarks.ingest_workers import WorkersRun, database_pids, run_workers
    from benchmarks.ingest_workers import report as report_workers

    runs: list[WorkersRun] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir / "mosquitto").start()
        servers = Servers(workdir, backends)
        print("conditions:", conditions(servers), flush=True)
        try:
            for backend in backends:
                for count in counts:
                    runs.append(run_workers(backend, count, broker, servers, workdir,
                                            readings // 50, 50, database_pids(servers)))
                    print(f"  {backend}, {count} workers: {runs[-1].readings_s:,.0f} "
                          f"readings/s", flush=True)
        finally:
            servers.stop()
            broker.stop()
    status = report_workers(runs)
    print("\nconditions after:", conditions())
    return status


def report(runs: list[Run], backends: Sequence[str]) -> int:
    """Print the table; 1 if any run lost readings or missed a target."""
    print(f"\n{'run':<58} {'readings/s':>11} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7}  note")
    ceilings = {run.name.split(", ", 1)[1]: run for run in runs
                if run.name.startswith("mqtt ceiling")}
    databases = {run.name.split(":")[0]: run for run in runs if "own ceiling" in run.name}
    lost = False
    for run in runs:
        note = ""
        if run.items != run.expected:
            note, lost = f"LOST: {run.expected - run.items:,}", True
        elif ": hub, " in run.name and run.name.split(", ", 1)[1] in ceilings:
            mqtt = ceilings[run.name.split(", ", 1)[1]]
            note = f"{run.messages_s / mqtt.messages_s:.0%} of the MQTT ceiling"
            backend = run.name.split(":")[0]
            if "backlog, 50" in run.name and backend in databases:
                note += (f", {run.readings_s / databases[backend].readings_s:.0%} of the "
                         "database's own ceiling")
        p50, p99 = run.percentile(0.5), run.percentile(0.99)
        lat = f"{p50:>7.0f} {p99:>7.0f}" if run.latencies_ms else f"{'-':>7} {'-':>7}"
        print(f"{run.name:<58} {run.readings_s:>11,.0f} {run.messages_s:>8,.0f} {lat}  {note}")
    print("\nconditions after:", conditions())
    misses = target_misses(runs, ceilings)
    for miss in misses:
        print("TARGET MISSED:", miss)
    if lost:
        print("FAILED: readings were lost (see LOST above)")
    return 1 if lost or misses else 0


TARGET_SQLITE_READINGS_S = 100_000  # one process, backlog of 50-reading messages
TARGET_SHARE_OF_CEILING = 0.80  # one process, backlog of 1-reading messages


def target_misses(runs: list[Run], ceilings: dict[str, Run]) -> list[str]:
    """The single-process targets of the SQLite back-end that this run missed."""
    misses = []
    for run in runs:
        if not run.name.startswith("sqlite: hub, backlog"):
            continue
        ceiling = ceilings.get(run.name.split(", ", 1)[1])
        if run.per_message == 50 and run.readings_s < TARGET_SQLITE_READINGS_S:
            misses.append(f"{run.name}: {run.readings_s:,.0f} readings/s < "
                          f"{TARGET_SQLITE_READINGS_S:,}")
        elif (run.per_message == 1 and ceiling is not None
              and run.messages_s < TARGET_SHARE_OF_CEILING * ceiling.messages_s):
            misses.append(f"{run.name}: {run.messages_s / ceiling.messages_s:.0%} of the MQTT "
                          f"ceiling < {TARGET_SHARE_OF_CEILING:.0%}")
    return misses


if __name__ == "__main__":
    sys.exit(main())
