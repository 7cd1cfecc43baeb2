"""A fleet of simulated edge agents against a real Mosquitto and a real hub (benchmark helpers).

Each agent is the agent's own store-and-forward path: an :class:`edge.buffer.Buffer` in a
temporary file and an :class:`edge.publisher.Publisher` draining it; only the sensors are
replaced by :meth:`SimulatedAgent.sample`. The hub runs as ``fabcity hub serve`` in a child
process on SQLite, the broker as ``tests.servers.Mosquitto`` (the project's config).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.buffer import Buffer  # noqa: E402
from edge.config import MqttConfig, PublishConfig  # noqa: E402
from edge.publisher import Publisher  # noqa: E402
from fabcity.reading import Reading  # noqa: E402
from tests.servers import Mosquitto, free_port, wait_for_http  # noqa: E402

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# Every client here is one address: lift the per-address limit on anonymous reads.
API_EXTRA = "rate_limit_per_s = 100000\nrate_limit_burst = 100000\n"


def raise_fd_limit() -> int:
    """Lift this process's open-file limit to the hard limit (children inherit it: Mosquitto
    needs one descriptor per client); returns the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def conditions() -> str:
    """The machine's conditions, printed beside every figure."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True,
                             check=False).stdout.splitlines()
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, load average {load}; python "
            f"{platform.python_version()}, {version[0] if version else 'mosquitto ?'}, sqlite "
            f"{sqlite3.sqlite_version}; open files {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _tree(int(child))
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants, from /proc."""
    total = 0
    for each in _tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS_PER_S


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (VmRSS, VmHWM) or a count (Threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class CpuMeter:
    """CPU use of process trees between :meth:`mark` and :meth:`percent` (% of one core)."""

    def __init__(self, *pids: int) -> None:
        self.pids = list(pids)
        self.mark()

    def _cpu(self) -> float:
        return sum(cpu_s(pid) for pid in self.pids)

    def mark(self) -> None:
        self._cpu_mark = self._cpu()
        self._wall = time.monotonic()

    def percent(self) -> float:
        wall = time.monotonic() - self._wall
        return 100 * (self._cpu() - self._cpu_mark) / wall if wall > 0 else 0.0


def start_broker(workdir: Path) -> Mosquitto:
    """Mosquitto with the project's config on a free port (its own listener only)."""
    broker = Mosquitto(workdir)
    broker.conf.write_text("".join(
        line for line in broker.conf.read_text().splitlines(keepends=True)
        if not line.startswith("listener ") or line.split()[1] == str(broker.port)))
    return broker.start()


class Hub:
    """``fabcity hub serve`` on SQLite in a child process."""

    def __init__(self, workdir: Path, broker_url: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "hub.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "hub.toml"
        self.config.write_text(
            f'state_dir = "{workdir}"\n[mqtt]\nurl = "{broker_url}"\n'
            f'[storage]\nbackend = "sqlite"\npath = "{self.db}"\n'
            f"[api]\nport = {self.port}\n{API_EXTRA}")
        self.log = workdir / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Hub:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fabcity", "hub", "serve", "-c", str(self.config)],
                stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        wait_for_http(f"{self.url}/api/v1/health", 60)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)

    def metric(self, name: str) -> float:
        """The sum of a counter over its labels, from ``/metrics``."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as answer:
            text = answer.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#")
                   and line[len(name):len(name) + 1] in ("{", " "))

    def stored(self, up_to_ms: int | None = None) -> int:
        """Points in the hub's store (with a timestamp up to ``up_to_ms``), read through a
        connection of our own."""
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            if up_to_ms is None:
                row = conn.execute("SELECT COUNT(*) FROM points").fetchone()
            else:
                row = conn.execute("SELECT COUNT(*) FROM points WHERE ts_ms <= ?",
                                   (up_to_ms,)).fetchone()
            return int(row[0])
        except sqlite3.OperationalError:  # the hub has not created its tables yet
            return 0
        finally:
            conn.close()


class SimulatedAgent:
    """One edge agent: the agent's buffer and publisher, with sensors that are a loop here."""

    def __init__(self, site: str, device: str, buffer_dir: Path, broker_url: str,
                 publish: PublishConfig, metrics: tuple[str, ...]) -> None:
        self.site = site
        self.device = device
        self.metrics = metrics
        # synchronous = "normal": a thousand buffers on one disk, not one per SD card.
        self.buffer = Buffer(buffer_dir / f"{site}-{device}.db", synchronous="normal")
        self.publisher = Publisher(site, device, self.buffer, MqttConfig(url=broker_url),
                                   publish)
        self.sampled = 0

    def sample(self, ts_ms: int, value: float) -> None:
        """Buffer one reading per metric, as the sampler does, and wake the publisher."""
        self.buffer.put([Reading(self.site, self.device, "sim", metric, value, ts_ms, "ug/m3")
                         for metric in self.metrics])
        self.sampled += len(self.metrics)
        self.publisher.wake()

    def close(self) -> None:
        self.publisher.stop(timeout_s=1.0)
        self.buffer.close()


def stop_all(agents: list[SimulatedAgent], workers: int = 32) -> None:
    """Stop many agents in parallel (each stop joins two threads)."""
    chunks = [agents[i::workers] for i in range(workers)]
    threads = [threading.Thread(target=lambda c=chunk: [a.close() for a in c])
               for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# paho's threaded loop watches its socket and a socketpair with select(), which refuses any
# descriptor above 1023 (FD_SETSIZE): the client then drops its connection before CONNECT,
# again and again. Three such descriptors per agent put the ceiling at 340 agents in one
# process, and only if the buffers' three SQLite descriptors each are kept above 1023.
SELECT_FD_LIMIT = 1024


def open_buffers_above_select_limit(make: Callable[[], list[SimulatedAgent]]
                                    ) -> list[SimulatedAgent]:
    """Run ``make`` while every descriptor below 1024 is taken, so the agents' SQLite files
    land above it and the sockets paho selects on get the low ones."""
    held: list[int] = []
    while True:
        fd = os.open(os.devnull, os.O_RDONLY)
        held.append(fd)
        if fd >= SELECT_FD_LIMIT - 1:
            break
    try:
        return make()
    finally:
        for fd in held:
            os.close(fd)


class Sampler:
    """Samples every agent every ``interval_s`` on one thread; remembers each tick."""

    def __init__(self, agents: list[SimulatedAgent], interval_s: float) -> None:
        self.agents = agents
        self.interval_s = interval_s
        self.ticks: list[tuple[int, int]] = []  # (ts_ms, readings) of each finished tick
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.late = 0  # ticks that started later than their time

    def _run(self) -> None:
        next_at = time.monotonic()
        n = 0
        while not self.stop.is_set():
            ts_ms = int(time.time() * 1000)
            n += 1
            for agent in self.agents:
                agent.sample(ts_ms, 5.0 + n % 40)
            self.ticks.append((ts_ms, sum(len(agent.metrics) for agent in self.agents)))
            next_at += self.interval_s
            if time.monotonic() > next_at:
                self.late += 1
                next_at = time.monotonic()
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def sampled(self, up_to_ms: int | None = None) -> int:
        return sum(n for ts, n in list(self.ticks) if up_to_ms is None or ts <= up_to_ms)


def _agent_process(conn: Connection, first: int, count: int, buffer_dir: Path,
                   broker_url: str, metrics: tuple[str, ...], interval_s: float,
                   setup: Callable[[], None], publish_keys: dict[str, Any]) -> None:
    """A child process's agents, driven by commands over ``conn``."""
    raise_fd_limit()
    setup()
    publish = PublishConfig(**publish_keys)
    agents = open_buffers_above_select_limit(lambda: [
        SimulatedAgent(f"fleet{i // 100}", f"pi-{i % 100}", buffer_dir, broker_url, publish,
                       metrics) for i in range(first, first + count)])
    sampler = Sampler(agents, interval_s)
    while True:
        command, arg = conn.recv()
        if command == "start":
            for agent in agents:
                agent.publisher.start()
            conn.send(None)
        elif command == "connected":
            conn.send([agent.publisher.connected for agent in agents])
        elif command == "sample":
            sampler.thread.start()
            conn.send(None)
        elif command == "sampled":
            conn.send(sampler.sampled(arg))
        elif command == "buffered":
            conn.send(sum(len(agent.buffer) for agent in agents))
        elif command == "stats":
            conn.send((status_kib(os.getpid(), "Threads"), status_kib(os.getpid(), "VmHWM"),
                       sampler.late))
        elif command == "stop_sampling":
            sampler.stop.set()
            sampler.thread.join(60)
            conn.send(None)
        elif command == "stop":
            stop_all(agents)
            conn.send(None)
            return


class AgentProcess:
    """Agents ``first`` to ``first + count - 1`` in a child process (``fork``); ``publish``
    holds ``[publish]`` keys of ``edge.toml``."""

    def __init__(self, first: int, count: int, buffer_dir: Path, broker_url: str,
                 metrics: tuple[str, ...], interval_s: float,
                 setup: Callable[[], None] = lambda: None,
                 publish: dict[str, Any] | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=_agent_process, args=(
            child, first, count, buffer_dir, broker_url, metrics, interval_s, setup,
            publish or {}), daemon=True)
        self.proc.start()

    def ask(self, command: str, arg: object = None) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.ask("stop")
        self.proc.join(60)
        if self.proc.is_alive():
            self.proc.kill()
