"""Real servers and processes for integration tests and benchmarks.

Mosquitto runs on a free port with the project's own ``deploy/mosquitto/mosquitto.conf``
(tuning, persistence, queues), minus the production listener and authentication, in a
temporary directory it can write to.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
INFLUXDB_CONF = ROOT / "deploy" / "influxdb" / "influxdb.conf"
_TEST_OVERRIDDEN = ("listener", "allow_anonymous", "password_file", "acl_file",
                    "persistence_location", "certfile", "keyfile", "cafile", "tls_version",
                    "autosave_interval")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_by_peer(sock: socket.socket, within_s: float) -> bool:
    """Whether the other end closes (or resets) ``sock`` within ``within_s`` seconds."""
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


class Mosquitto:
    """A real Mosquitto broker; restartable on the same port with the same persistence."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            raise RuntimeError("mosquitto is not installed: run `make test` (it installs it)")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_conf()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        kept = [
            line for line in MOSQUITTO_CONF.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
            and line.split()[0] not in _TEST_OVERRIDDEN
        ]
        persistence = self.workdir / "data"
        persistence.mkdir(exist_ok=True)
        kept += [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence_location {persistence}/",
            "autosave_interval 1",
            # Started as root, Mosquitto would drop to its own user and could not write here.
            "user root" if os.geteuid() == 0 else "",
        ]
        self.conf.write_text("\n".join(kept) + "\n")

    def start(self) -> Mosquitto:
        log = self.log.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log,
                                     stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop (SIGTERM saves the persistence file; SIGKILL does not)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def wait_for_http(url: str, timeout_s: float = 30.0) -> None:
    """Block until ``url`` answers with a 2xx status."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer after {timeout_s} s")
        time.sleep(0.1)


class _Server:
    """A child process with a log file, stoppable and restartable on the same port."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready_path(self) -> str:
        return "/"

    def start(self) -> _Server:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=handle, stderr=subprocess.STDOUT)
        try:
            wait_for_http(self.url + self.ready_path())
        except TimeoutError:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"{self.name} did not start; its log:\n"
                               + self.log.read_text(errors="replace")[-3000:]) from None
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class InfluxDB1(_Server):
    """A real InfluxDB 1.x (Debian's ``influxd``) with ``deploy/influxdb/influxdb.conf``,
    its directories and ports moved into a temporary directory."""

    name = "influxd"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.binary = shutil.which("influxd") or "/usr/bin/influxd"
        if not Path(self.binary).exists():
            raise RuntimeError("influxd is not installed: run `make test` (it installs "
                               "Debian's influxdb package)")
        self.rpc_port = free_port()
        self.conf = workdir / "influxdb.conf"
        text = INFLUXDB_CONF.read_text()
        replacements = {
            '"/var/lib/influxdb/meta"': f'"{workdir / "meta"}"',
            '"/var/lib/influxdb/data"': f'"{workdir / "data"}"',
            '"/var/lib/influxdb/wal"': f'"{workdir / "wal"}"',
            '"127.0.0.1:8088"': f'"127.0.0.1:{self.rpc_port}"',
            '"127.0.0.1:8086"': f'"127.0.0.1:{self.port}"',
        }
        for old, new in replacements.items():
            assert old in text, f"{INFLUXDB_CONF} no longer has {old}"
            text = text.replace(old, new)
        self.conf.write_text(text)

    def command(self) -> list[str]:
        return [self.binary, "-config", str(self.conf)]

    def ready_path(self) -> str:
        return "/ping"

    def query(self, q: str, database: str | None = None, method: str = "POST") -> object:
        """Run InfluxQL and return the decoded JSON answer (test helper)."""
        params = {"q": q, "epoch": "ms"}
        if database:
            params["db"] = database
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(self.url + "/query", data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


class VictoriaMetrics(_Server):
    """A real VictoriaMetrics (Debian's ``victoria-metrics``): it takes the InfluxDB v2 write
    API (``/api/v2/write``), which the ``influxdb`` back-end's write path is tested against."""

    name = "victoria-metrics"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        if not Path(self.binary).exists():
            raise RuntimeError("victoria-metrics is not installed: run `make test` (it "
                               "installs Debian's victoria-metrics package)")

    def command(self) -> list[str]:
        return [self.binary, f"-storageDataPath={self.workdir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=100y",
                "-dedup.minScrapeInterval=1ms",  # a replayed point is kept once
                "-search.latencyOffset=0s", "-loggerLevel=WARN"]

    def ready_path(self) -> str:
        return "/health"

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, object]]:
        """Every stored series with its values and timestamps (``/api/v1/export``)."""
        urllib.request.urlopen(self.url + "/internal/force_flush", timeout=30).close()
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


class FabcityProcess:
    """``python -m fabcity …`` as a child process, with its output in a log file."""

    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = [sys.executable, "-m", "fabcity", *args]
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> FabcityProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=handle, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=ROOT)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, as a crash or power cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout_s: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
