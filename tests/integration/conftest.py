"""Fixtures that start real processes: Mosquitto, ``fabcity hub serve``, ``fabcity edge run``."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.buffer import spool_path
from tests.servers import FabcityProcess, Mosquitto, free_port

pytestmark = pytest.mark.integration


def wait_until(predicate: Callable[[], object], timeout_s: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until it is truthy, or fail with ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


class Hub:
    """A ``fabcity hub serve`` child process on SQLite and a free API port."""

    def __init__(self, workdir: Path, broker_url: str, storage: str | None = None) -> None:
        self.port = free_port()
        self.db = workdir / "hub.db"
        self.config = workdir / "hub.toml"
        storage = storage or f'backend = "sqlite"\npath = "{self.db}"\n'
        self.config.write_text(
            f'state_dir = "{workdir}"\n'
            f'[mqtt]\nurl = "{broker_url}"\n'
            f"[storage]\n{storage}"
            f'[api]\nhost = "127.0.0.1"\nport = {self.port}\n'
        )
        self.process = FabcityProcess(["hub", "serve", "--config", str(self.config)],
                                      workdir / "hub.log")

    def start(self) -> Hub:
        self.process.start()
        wait_until(self._connected, what="hub API up and connected to the broker")
        return self

    def _connected(self) -> bool:
        try:
            return bool(self.get("/api/v1/health")["mqtt"]["connected"])
        except OSError:
            return False

    def get(self, path: str) -> dict:  # type: ignore[type-arg]
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode()

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:  # type: ignore[type-arg]
        """Query the hub's database directly, read-only."""
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def sequence(self, site: str, device: str, sensor: str = "seq") -> list[float]:
        """Stored values of a ``sequence`` sensor, in time order."""
        return [v for (v,) in self.rows(
            "SELECT value FROM readings WHERE site = ? AND device = ? AND sensor = ? "
            "ORDER BY ts_ms", (site, device, sensor))]


class Edge:
    """A ``fabcity edge run`` child process with a ``sequence`` sensor and more."""

    def __init__(self, workdir: Path, broker_url: str, site: str = "lab", device: str = "pi-1",
                 interval_s: float = 0.005, extra_sensors: str = "", publish: str = "") -> None:
        self.site, self.device = site, device
        self.buffer = workdir / f"edge-{device}.db"
        self.spool_dir = workdir / "shm"
        self.config = workdir / f"edge-{device}.toml"
        self.config.write_text(
            f'site = "{site}"\ndevice = "{device}"\n'
            f'[mqtt]\nurl = "{broker_url}"\nkeepalive_s = 5\n'
            f'[buffer]\npath = "{self.buffer}"\nspool_dir = "{self.spool_dir}"\n'
            f"[publish]\nbatch_size = 50\nlinger_s = 0.05\n{publish}"
            f'[[sensors]]\ndriver = "simulated"\nname = "seq"\nprofile = "sequence"\n'
            f"interval_s = {interval_s}\n{extra_sensors}"
        )
        self.process = FabcityProcess(["edge", "run", "--config", str(self.config)],
                                      workdir / f"edge-{device}.log")

    def buffered(self) -> list[tuple[int, float]]:
        """(ts_ms, value) of the sequence readings still in the buffer: on the card, then
        in the spool (RAM, readings younger than ``commit_interval_s``)."""
        rows: dict[int, tuple[int, float]] = {}  # by id: a commit may leave one in both
        for path in (self.buffer, spool_path(self.buffer, self.spool_dir)):
            if not path.exists():
                continue
            conn = sqlite3.connect(path, timeout=10)
            try:
                rows.update((row_id, (ts_ms, value)) for row_id, ts_ms, value in conn.execute(
                    "SELECT id, ts_ms, value FROM buffer WHERE sensor = 'seq'"))
            except sqlite3.OperationalError as exc:  # the agent is creating the file
                if "no such table" not in str(exc):
                    raise
            finally:
                conn.close()
        return [rows[row_id] for row_id in sorted(rows)]


@pytest.fixture
def hub(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Hub]:
    h = Hub(tmp_path, mosquitto.url).start()
    yield h
    h.process.terminate()


@pytest.fixture
def make_edge(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Callable[..., Edge]]:
    edges: list[Edge] = []

    def make(**kwargs: object) -> Edge:
        edge = Edge(tmp_path, mosquitto.url, **kwargs)  # type: ignore[arg-type]
        edges.append(edge)
        return edge

    yield make
    for edge in edges:
        edge.process.kill()


def assert_gap_free(values: list[float]) -> None:
    """0, 1, 2, … with nothing missing and nothing twice."""
    assert values, "no readings stored"
    ints = [int(v) for v in values]
    duplicates = len(ints) - len(set(ints))
    missing = sorted(set(range(max(ints) + 1)) - set(ints))
    assert duplicates == 0, f"{duplicates} readings stored twice"
    assert not missing, f"{len(missing)} readings lost, first: {missing[:10]}"
