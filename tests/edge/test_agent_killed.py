"""A real agent SIGKILLed mid-stream with ``commit_interval_s = 1`` loses nothing.

The agent runs a ``sequence`` sensor (0, 1, 2, … every 5 ms) against a real Mosquitto; a
subscriber records what reached the broker. After the kill, every value up to the highest
one made is either at the broker or still in the buffer (card and spool), which the next
start sends.
"""

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.buffer import Buffer, spool_path
from tests.servers import FabcityProcess, Mosquitto


class Received:
    """The sequence values delivered on the device's readings topic."""

    def __init__(self, broker: Mosquitto) -> None:
        self.values: list[int] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("fabcity/v1/lab/pi-1/readings", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.values += [int(r["value"]) for r in json.loads(msg.payload)["readings"]]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait(predicate: Callable[[], object], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM buffer").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def agent(tmp_path: Path, mosquitto: Mosquitto) -> FabcityProcess:
    config = tmp_path / "edge.toml"
    config.write_text(
        f'site = "lab"\ndevice = "pi-1"\n[mqtt]\nurl = "{mosquitto.url}"\nkeepalive_s = 5\n'
        f'[buffer]\npath = "{tmp_path / "buffer.db"}"\ncommit_interval_s = 1\n'
        f'spool_dir = "{tmp_path / "shm"}"\n'
        "[publish]\nbatch_size = 50\nlinger_s = 0.05\n"
        "confirm = false\n"  # no hub here: the broker's PUBACK releases a reading
        '[[sensors]]\ndriver = "simulated"\nname = "seq"\nprofile = "sequence"\n'
        "interval_s = 0.005\n")
    return FabcityProcess(["edge", "run", "--config", str(config)], tmp_path / "edge.log")


def _assert_nothing_lost(received: Received, tmp_path: Path) -> list[int]:
    """What reached the broker plus what stays buffered: 0, 1, 2, … with no gap."""
    buffer = Buffer(tmp_path / "buffer.db", spool_dir=tmp_path / "shm")
    try:
        buffered = [int(r.value) for _, r in buffer.take(0, 1_000_000)]
    finally:
        buffer.close()
    with received._lock:
        values = set(received.values) | set(buffered)
    missing = sorted(set(range(max(values) + 1)) - values)
    assert not missing, f"{len(missing)} readings lost, first: {missing[:10]}"
    return buffered


def test_sigkill_while_publishing_loses_nothing(
        agent: FabcityProcess, mosquitto: Mosquitto, tmp_path: Path) -> None:
    received = Received(mosquitto)
    agent.start()
    try:
        _wait(lambda: len(received.values) > 300)
        agent.kill()
        time.sleep(0.5)  # what the broker took reaches the subscriber
    finally:
        agent.kill()
        received.close()
    assert _count(tmp_path / "buffer.db") < 50, "acknowledged readings should skip the card"
    _assert_nothing_lost(received, tmp_path)


def test_sigkill_with_readings_on_the_card_and_in_the_spool_loses_nothing(
        agent: FabcityProcess, mosquitto: Mosquitto, tmp_path: Path) -> None:
    received = Received(mosquitto)
    agent.start()
    assert mosquitto.proc is not None
    try:
        _wait(lambda: len(received.values) > 100)
        mosquitto.proc.send_signal(signal.SIGSTOP)  # no PUBACK: readings stay buffered
        try:
            time.sleep(1.6)  # over one commit interval: the oldest are on the card by now
            agent.kill()
        finally:
            mosquitto.proc.send_signal(signal.SIGCONT)
        time.sleep(0.5)
    finally:
        agent.kill()
        received.close()
    on_card = _count(tmp_path / "buffer.db")
    spooled = _count(spool_path(tmp_path / "buffer.db", tmp_path / "shm"))
    assert on_card > 50 and spooled > 0, (on_card, spooled)
    assert len(_assert_nothing_lost(received, tmp_path)) >= on_card + spooled - 100
