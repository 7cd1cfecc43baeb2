"""A real Mosquitto with authentication, the hub's rendered password and ACL files, a plain
loopback listener and a TLS listener signed by a throw-away CA made with the openssl CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.servers import MOSQUITTO_CONF, free_port, wait_for_port


@dataclass(frozen=True)
class ScratchCa:
    """A CA and a broker certificate for 127.0.0.1 / localhost."""

    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_test_ca(directory: Path, name: str = "ca") -> ScratchCa:
    """A CA (EC P-256, 2 days) and a broker certificate it signs, as docs/operations.md
    shows."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed to make a test CA")
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=fabcity test {name}", cwd=directory)
    _openssl("req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost",
             cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", f"{name}.pem", "-CAkey", f"{name}.key",
             "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "san.ext",
             cwd=directory)
    return ScratchCa(directory / f"{name}.pem", directory / "broker.crt", directory / "broker.key")


def deploy_setting(name: str) -> str | None:
    """The value of a setting in deploy/mosquitto/mosquitto.conf, if set there."""
    for line in MOSQUITTO_CONF.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return " ".join(parts[1:])
    return None


class SecureMosquitto:
    """Mosquitto with ``allow_anonymous false``, the given password and ACL files, a plain
    listener on 127.0.0.1 and a TLS one."""

    def __init__(self, workdir: Path, password_file: Path, acl_file: Path, tls: ScratchCa) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.tls_port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {password_file}",
            f"acl_file {acl_file}",
            "set_tcp_nodelay true",
            "persistence false",
            f"log_dest file {self.log}",
            "log_type all",
            f"listener {self.port} 127.0.0.1",
            f"listener {self.tls_port} 127.0.0.1",
            f"cafile {tls.ca}",
            f"certfile {tls.cert}",
            f"keyfile {tls.key}",
            "user root" if os.geteuid() == 0 else "",
        ]
        limit = deploy_setting("message_size_limit")
        if limit is not None:
            lines.insert(0, f"message_size_limit {limit}")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SecureMosquitto:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        wait_for_port(self.tls_port)
        return self

    @property
    def reload_command(self) -> str:
        """What ``[broker] reload_command`` runs: SIGHUP rereads both files."""
        assert self.proc is not None
        return f"kill -HUP {self.proc.pid}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def logged(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
