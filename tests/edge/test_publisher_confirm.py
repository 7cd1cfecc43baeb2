"""End-to-end confirmation against a real Mosquitto: a stand-in hub reads the batches and
confirms (or not) on the device's ``ack`` topic; rows leave the buffer only when confirmed."""

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge.buffer import Buffer
from edge.config import MqttConfig, PublishConfig
from edge.publisher import Publisher
from fabcity.ack import encode_ack
from fabcity.reading import Reading, now_ms
from tests.servers import Mosquitto

READINGS = "fabcity/v1/lab/pi-1/readings"
ACK = "fabcity/v1/lab/pi-1/ack"


def _wait(predicate: Callable[[], object], timeout_s: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


class StandInHub:
    """Reads the device's batches (persistent session) and confirms them when told to."""

    def __init__(self, broker: Mosquitto, confirm_all: bool = False) -> None:
        self.batches: list[dict[str, object]] = []
        self.confirm_all = confirm_all
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="stand-in-hub",
                                  clean_session=False)
        self.client.on_connect = lambda c, *_: c.subscribe(READINGS, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        _wait(self.client.is_connected, what="the stand-in hub connected")
        time.sleep(0.2)  # subscribed

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self._lock:
            self.batches.append(body)
        if self.confirm_all:
            self.confirm([(body["first"], body["seq"])])

    def ranges(self) -> list[tuple[int, int]]:
        """(first, seq) of every batch received, in arrival order (repeats included)."""
        with self._lock:
            return [(int(b.get("first", b["seq"])), int(b["seq"])) for b in self.batches]  # type: ignore[call-overload]

    def confirm(self, ranges: list[tuple[int, int]]) -> None:
        for payload in encode_ack(ranges):
            self.client.publish(ACK, payload, qos=0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _buffer(tmp_path: Path, count: int) -> Buffer:
    buffer = Buffer(tmp_path / "buffer.db")
    base = now_ms() - 10_000
    buffer.put([Reading("lab", "pi-1", "seq", "count", float(i), base + i, "1")
                for i in range(count)])
    return buffer


def _publisher(broker: Mosquitto, buffer: Buffer, **publish: object) -> Publisher:
    cfg = PublishConfig(**{"batch_size": 50, "linger_s": 0, **publish})  # type: ignore[arg-type]
    return Publisher("lab", "pi-1", buffer, MqttConfig(url=broker.url, keepalive_s=5), cfg)


def test_rows_wait_for_the_hubs_confirmation_and_unconfirmed_ones_are_resent(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    hub = StandInHub(mosquitto)
    buffer = _buffer(tmp_path, 120)
    publisher = _publisher(mosquitto, buffer, confirm_timeout_s=1.0)
    publisher.start()
    try:
        _wait(lambda: len(hub.ranges()) == 3, what="three batches")
        assert hub.ranges() == [(1, 50), (51, 100), (101, 120)]
        assert all(b["confirm"] is True for b in hub.batches)
        time.sleep(0.3)  # every PUBACK is in: the broker's PUBACK alone deletes nothing
        assert len(buffer) == 120
        hub.confirm([(1, 50), (101, 120)])  # the middle batch "lost" on the way
        _wait(lambda: len(buffer) == 50, what="the confirmed rows deleted")
        _wait(lambda: len(hub.ranges()) == 4, what="the unconfirmed batch sent again")
        assert hub.ranges()[3] == (51, 100), "a resend keeps the batch's ids"
        assert publisher.resent == 50
        hub.confirm([(51, 100)])
        _wait(lambda: len(buffer) == 0, what="the buffer drained")
        assert publisher.published == 120
    finally:
        publisher.stop()
        hub.close()


def test_a_silent_hub_gets_a_bounded_window_then_one_probe_at_a_time(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    hub = StandInHub(mosquitto)
    buffer = _buffer(tmp_path, 1000)
    publisher = _publisher(mosquitto, buffer, confirm_timeout_s=0.3, max_unconfirmed=200)
    publisher.start()
    try:
        _wait(lambda: len(hub.ranges()) >= 4, what="the window sent")
        time.sleep(2.0)  # timeouts at 0.3, then 0.6, 1.2 s apart: three probes at most
        sent = hub.ranges()
        window = [(1, 50), (51, 100), (101, 150), (151, 200)]
        assert sent[:4] == window
        probes = sent[4:]
        assert 1 <= len(probes) <= 4, f"{len(probes)} resends in 2 s"
        assert set(probes) <= set(window), "nothing beyond the window while unconfirmed"
        assert len(buffer) == 1000
        hub.confirm_all = True  # the hub is back
        hub.confirm(window)
        _wait(lambda: len(buffer) == 0, 20, what="the buffer drained once the hub confirms")
    finally:
        publisher.stop()
        hub.close()


def test_after_a_broker_crash_unconfirmed_batches_go_again_once(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    hub = StandInHub(mosquitto)
    buffer = _buffer(tmp_path, 100)
    publisher = _publisher(mosquitto, buffer, confirm_timeout_s=60)
    publisher.start()
    try:
        _wait(lambda: len(hub.ranges()) == 2, what="two batches")
        time.sleep(1.3)  # PUBACKed, and the hub's session is in the broker's snapshot
        assert mosquitto.proc is not None
        mosquitto.proc.send_signal(signal.SIGSTOP)  # no PUBACK for what comes now
        base = now_ms() - 5_000
        buffer.put([Reading("lab", "pi-1", "seq", "count", float(i), base + i, "1")
                    for i in range(100, 200)])
        publisher.wake()
        time.sleep(0.5)  # handed to paho, which waits for the PUBACKs
        mosquitto.stop(signal.SIGKILL)
        mosquitto.start()
        # Long before the 60 s timeout, the reconnect alone resends everything unconfirmed:
        # the PUBACKed batches by the agent, the others by paho, none by both.
        _wait(lambda: len(hub.ranges()) >= 6, 20, what="the batches sent again")
        time.sleep(1.0)
        assert sorted(hub.ranges()) == [(1, 50), (1, 50), (51, 100), (51, 100), (101, 150),
                                        (151, 200)]
        hub.confirm([(1, 200)])
        _wait(lambda: len(buffer) == 0, what="the buffer drained")
    finally:
        publisher.stop()
        hub.close()


def test_without_confirm_rows_leave_on_the_brokers_puback(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    hub = StandInHub(mosquitto)
    buffer = _buffer(tmp_path, 120)
    publisher = _publisher(mosquitto, buffer, confirm=False)
    publisher.start()
    try:
        _wait(lambda: len(buffer) == 0, what="the buffer drained without any hub")
        _wait(lambda: len(hub.ranges()) == 3, what="three batches")
        assert all("confirm" not in b and "first" not in b for b in hub.batches)
        assert publisher.published == 120
    finally:
        publisher.stop()
        hub.close()


def test_a_refused_ack_subscription_falls_back_to_the_puback(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A broker that refuses the subscription (SUBACK 0x80; Mosquitto 2.0.11 grants it and
    filters instead) leaves no confirmation to wait for: rows go on the PUBACK again."""
    buffer = _buffer(tmp_path, 120)
    publisher = _publisher(mosquitto, buffer, confirm_timeout_s=60)
    publisher.start()
    try:
        _wait(lambda: publisher.connected)
        time.sleep(0.5)  # sent and PUBACKed, waiting for a hub that is not there
        assert len(buffer) == 120
        refused = ReasonCode(PacketTypes.SUBACK, identifier=0x80)
        publisher._on_subscribe(publisher.client, None, 1, [refused], None)
        _wait(lambda: len(buffer) == 0, what="the PUBACKed rows deleted")
        assert not publisher.confirming and publisher.published == 120
    finally:
        publisher.stop()
