"""Why a broker cannot be reached: probed, named, and logged once per change."""

import logging
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabcity.link import LinkReporter, check_broker, connack_hint, probe_broker
from fabcity.mqtt import BrokerAddress, parse_broker_url
from tests.servers import Mosquitto, free_port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts and says nothing (not an MQTT broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_port_nobody_listens_on_is_named_refused() -> None:
    cause = probe_broker(BrokerAddress("127.0.0.1", free_port(), tls=False))
    assert cause.startswith("connection refused: nothing listens on 127.0.0.1:")


def test_an_unknown_host_is_named_a_dns_failure() -> None:
    cause = probe_broker(BrokerAddress("no-such-host.invalid", 1883, tls=False))
    assert "cannot resolve 'no-such-host.invalid' (DNS" in cause


def test_a_server_that_is_not_a_broker_is_told_apart(silent_server: int) -> None:
    cause = probe_broker(BrokerAddress("127.0.0.1", silent_server, tls=False))
    assert "TCP connection works" in cause
    tls = probe_broker(BrokerAddress("127.0.0.1", silent_server, tls=True), timeout_s=0.5)
    assert tls.startswith("TLS handshake failed")


@pytest.mark.parametrize(("reason", "says"), [
    ("Bad user name or password", "check [mqtt] username and password"),
    ("Not authorized", "password (or password_file), and that the broker's ACL"),
    ("Client identifier not valid", "check [mqtt] client_id"),
    ("Server unavailable", "refused the connection: Server unavailable"),
])
def test_broker_refusals_say_what_to_check(reason: str, says: str) -> None:
    assert says in connack_hint(reason)


def test_the_reporter_logs_each_cause_once_and_the_recovery(
        caplog: pytest.LogCaptureFixture) -> None:
    buffered = [0]
    reporter = LinkReporter(logging.getLogger("t"), BrokerAddress("broker", 1883, tls=False),
                            "edge agent", context=lambda: f"{buffered[0]} readings buffered")
    with caplog.at_level(logging.INFO, "t"):
        for buffered[0] in range(5):
            reporter.failed("connection refused")
        reporter.failed("no answer")
        reporter.connected()
        reporter.lost("keepalive timeout")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    assert "connection refused; retrying with backoff up to 30 s; 0 readings buffered" in lines[0]
    assert "no answer" in lines[1] and "4 readings buffered" in lines[1]
    assert "connected to mqtt://broker:1883 after" in lines[2] and "6 failed attempts" in lines[2]
    assert "connection lost (keepalive timeout)" in lines[3]


def test_check_broker_logs_in_to_a_real_broker(mosquitto: Mosquitto) -> None:
    ok, message = check_broker(parse_broker_url(mosquitto.url))
    assert ok and "accepted this client" in message


def test_check_broker_names_refused_credentials(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "hub", "right"], check=True)
    port = free_port()
    conf = tmp_path / "auth.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {passwords}\n"
                    + ("user root\n" if os.geteuid() == 0 else ""))  # it may read our tmp dir
    broker = Mosquitto(tmp_path / "unused")
    broker.conf, broker.port = conf, port
    broker.start()
    try:
        address = parse_broker_url(f"mqtt://127.0.0.1:{port}")
        ok, message = check_broker(address, "hub", "wrong")
        assert not ok and "check [mqtt] username and password" in message
        assert check_broker(address, "hub", "right")[0]
    finally:
        broker.stop()
