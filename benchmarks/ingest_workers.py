"""Ingest workers sharing the readings: N ``fabcity hub ingest`` processes on one MQTT v5
shared subscription, a real Mosquitto, and a real database; ``benchmarks/ingest.py
--workers 1,2,4`` runs it.

Each run starts N worker processes (``--worker-id 0..N-1``, ``[ingest] metrics_port``),
waits until all are connected, stops them with SIGSTOP, publishes the readings (the broker
deals the messages out to the group's members as they arrive, queueing what a stopped
worker cannot take), then starts the clock and wakes the workers with SIGCONT: the drain
measures the workers, the broker and the database, without the publisher or the workers'
start-up. The end is when the workers' ``fabcity_readings_stored_total`` (scraped from each
worker's metrics port) adds up to every reading; the store is then counted to check that
nothing is missing.

The CPU time of every process (workers, Mosquitto, the database) during the drain is read
from ``/proc/<pid>/stat``, and how busy the whole machine was (every process, ours or not)
from ``/proc/stat``: a process near 100 % of one core is the ceiling; cores all busy while
ours get less is a machine shared with other work; neither is a wait (a database's fsync).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import encode_batch
from fabcity.reading import Reading, now_ms
from tests.servers import FabcityProcess, Mosquitto, free_port

METRICS = ("temperature", "humidity", "pm2_5", "pm10", "co2", "noise")
TICKS = os.sysconf("SC_CLK_TCK")
GROUP = "bench"  # plus the run tag: a finished run's sessions keep their turn in theirs


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


@dataclass
class WorkersRun:
    backend: str
    workers: int
    readings: int
    stored: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds
    machine_busy: float = 0.0  # share of all cores busy during the drain (any process)

    @property
    def readings_s(self) -> float:
        return self.readings / self.seconds


def storage_toml(backend: str, servers: Any, workdir: Path, tag: int) -> str:
    if backend == "sqlite":
        return f'backend = "sqlite"\npath = "{workdir / f"workers-{tag}.db"}"\n'
    if backend == "influxdb1":
        return (f'backend = "influxdb1"\nurl = "{servers.influxdb1.url}"\n'
                f'database = "workers{tag}"\n')
    return (f'backend = "influxdb"\nurl = "{servers.vm.url}"\ntoken = "bench"\norg = "bench"\n'
            f'bucket = "workers{tag}"\nquery_url = "{servers.influxdb1.url}"\n')


def scrape_stored(ports: list[int]) -> int:
    total = 0.0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(("fabcity_readings_stored_total ",
                                    "fabcity_readings_duplicate_total ")):
                    total += float(line.split()[1])
    return int(total)


def publish_backlog(port: int, topic: str, messages: int, per_message: int) -> None:
    base_ms = now_ms() - 3_600_000
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-workers-pub-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    pending = []
    for i in range(messages):
        payload = encode_batch(i, [Reading("bench", "pi", f"s{j // 6}", METRICS[j % 6], 1.0 + j,
                                           base_ms + i) for j in range(per_message)])
        pending.append(client.publish(topic, payload, qos=1))
        if len(pending) > 2000:
            pending.pop(0).wait_for_publish(60)
    for info in pending:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def run_workers(backend: str, workers: int, broker: Mosquitto, servers: Any, workdir: Path,
                messages: int, per_message: int, db_pids: dict[str, int]) -> WorkersRun:
    """Drain ``messages`` x ``per_message`` readings with ``workers`` ingest processes."""
    tag = time.time_ns()
    metrics_port = free_port()
    while any(not _free(metrics_port + i) for i in range(workers)):
        metrics_port = free_port()
    config = workdir / f"workers-{tag}.toml"
    config.write_text(
        f'state_dir = "{workdir / f"state-{tag}"}"\n'
        f'[mqtt]\nurl = "{broker.url}"\nclient_id = "bench-{tag}"\nshared_group = "{GROUP}-{tag}"\n'
        f"probe = false\n[ingest]\nmetrics_port = {metrics_port}\n"
        f"[storage]\n{storage_toml(backend, servers, workdir, tag)}")
    procs = [FabcityProcess(["hub", "ingest", "-c", str(config), "--worker-id", str(i)],
                            workdir / f"worker-{tag}-{i}.log").start() for i in range(workers)]
    ports = [metrics_port + i for i in range(workers)]
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 300
        while not all("MQTT v5" in p.output() and _answers(port)
                      for p, port in zip(procs, ports, strict=True)):
            if time.monotonic() > deadline or any(p.proc and p.proc.poll() is not None
                                                  for p in procs):
                raise RuntimeError("workers did not start:\n" +
                                   "\n".join(p.output()[-2000:] for p in procs))
            time.sleep(0.1)
        time.sleep(0.5)  # subscriptions acknowledged
        for p in procs:
            assert p.proc is not None
            p.proc.send_signal(signal.SIGSTOP)
        print(f"    {workers} workers up in {time.monotonic() - started:.1f} s", flush=True)
        published = time.monotonic()
        publish_backlog(broker.port, "fabcity/v1/bench/pi/readings", messages, per_message)
        print(f"    published in {time.monotonic() - published:.1f} s", flush=True)
        expected = messages * per_message
        pids = {f"worker {i}": p.proc.pid for i, p in enumerate(procs) if p.proc}
        pids.update({"mosquitto": broker.proc.pid if broker.proc else 0, **db_pids})
        before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
        machine_before = machine_busy()
        t0 = time.perf_counter()
        for p in procs:
            assert p.proc is not None
            p.proc.send_signal(signal.SIGCONT)
        stored = 0
        while stored < expected:
            if time.perf_counter() - t0 > 600:
                break
            time.sleep(0.05)
            try:
                stored = scrape_stored(ports)
            except OSError:  # a worker too busy to answer in time: ask again
                continue
        elapsed = time.perf_counter() - t0
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items() if pid}
        busy, total = (after - first for after, first in zip(machine_busy(), machine_before,
                                                              strict=True))
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
            p.terminate()
    return WorkersRun(backend, workers, expected, stored, elapsed, cpu, busy / total)


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        scrape_stored([port])
    except OSError:
        return False
    return True


def cpu_per_reading(run: WorkersRun) -> tuple[float, float, float]:
    """CPU µs per reading of the workers (together), the broker and the database: unlike
    readings/s, this does not shrink when other work shares the machine."""
    workers = sum(v for k, v in run.cpu.items() if k.startswith("worker"))
    broker = run.cpu.get("mosquitto", 0.0)
    database = sum(v for k, v in run.cpu.items() if not k.startswith("worker")
                   and k != "mosquitto")
    return tuple(1e6 * v / run.readings for v in (workers, broker, database))  # type: ignore[return-value]


def report(runs: list[WorkersRun]) -> int:
    """Print readings/s, the CPU each part spent per reading and each process's CPU share
    of the drain; 1 if readings are missing."""
    print(f"\n{'back-end':<10} {'workers':>7} {'readings/s':>11} {'s':>5} {'machine':>7}  "
          f"{'µs CPU/reading: hub':>19} {'broker':>6} {'db':>5}  CPU of each process "
          "(% of one core)")
    missing = False
    for run in runs:
        shares = ", ".join(f"{name} {seconds / run.seconds:.0%}"
                           for name, seconds in run.cpu.items())
        note = "" if run.stored >= run.readings else f"  MISSING {run.readings - run.stored:,}"
        missing |= bool(note)
        hub, broker, database = cpu_per_reading(run)
        print(f"{run.backend:<10} {run.workers:>7} {run.readings_s:>11,.0f} "
              f"{run.seconds:>5.1f} {run.machine_busy:>7.0%}  {hub:>19.1f} {broker:>6.1f} "
              f"{database:>5.1f}  {shares}{note}")
    return 1 if missing else 0


def database_pids(servers: Any) -> dict[str, int]:
    pids = {}
    for name, server in (("influxd", servers.influxdb1), ("victoria-metrics", servers.vm)):
        if server is not None and getattr(server, "proc", None) is not None:
            pids[name] = server.proc.pid
    return pids
