"""The publisher against a real Mosquitto: one retained set, republished on every connect."""

import contextlib
import itertools
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.buffer import Buffer
from edge.config import MqttConfig, PublishConfig
from edge.publisher import Publisher
from fabcity.device import DeviceMeta, SensorMeta, decode_meta, decode_status
from tests.servers import Mosquitto


def _wait(predicate: Callable[[], object], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _retained(broker: Mosquitto, topic_filter: str, settle_s: float = 1.0) -> dict[str, bytes]:
    """What the broker holds retained under ``topic_filter`` now."""
    got: dict[str, bytes] = {}
    lock = threading.Lock()

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if msg.retain:
            with lock:
                got[msg.topic] = bytes(msg.payload)

    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe(topic_filter, qos=1)
    client.loop_start()
    time.sleep(settle_s)
    client.disconnect()
    client.loop_stop()
    return got


def _publisher(broker: Mosquitto, tmp_path: Path) -> Publisher:
    meta = DeviceMeta(site="lab", device="pi-1", sensors=[
        SensorMeta(name="air", driver="simulated", metrics={"pm2_5": "ug/m3"})])
    return Publisher("lab", "pi-1", Buffer(tmp_path / "buffer.db"),
                     MqttConfig(url=broker.url, keepalive_s=5), PublishConfig(), meta=meta)


def test_status_and_meta_are_the_contract_models_both_sides_decode(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    publisher = _publisher(mosquitto, tmp_path)
    publisher.start()
    _wait(lambda: publisher.connected)
    # Connected is the CONNACK; the retained status and meta follow it (later on a busy machine).
    wanted = {"fabcity/v1/lab/pi-1/status", "fabcity/v1/lab/pi-1/meta"}
    deadline = time.monotonic() + 20
    held = _retained(mosquitto, "fabcity/v1/lab/pi-1/+")
    while not wanted <= held.keys() and time.monotonic() < deadline:
        held = _retained(mosquitto, "fabcity/v1/lab/pi-1/+", settle_s=0.5)
    publisher.stop()
    status = decode_status(held["fabcity/v1/lab/pi-1/status"])
    assert status.state == "online" and status.buffered == 0 and status.dropped == 0
    assert decode_meta(held["fabcity/v1/lab/pi-1/meta"]).sensors[0].metrics == {
        "pm2_5": "ug/m3"}


def test_the_retained_set_comes_back_after_a_broker_lost_it(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    publisher = _publisher(mosquitto, tmp_path)
    publisher.retain("homeassistant/sensor/pi-1_air_pm2_5/config", b'{"name": "PM2.5"}')
    publisher.start()
    _wait(lambda: publisher.connected)
    publisher.retain("homeassistant/sensor/pi-1_air_pm10/config", b'{"name": "PM10"}')
    mosquitto.stop()
    shutil.rmtree(mosquitto.workdir / "data")  # a broker that forgot every retained message
    (mosquitto.workdir / "data").mkdir()
    mosquitto.start()
    _wait(lambda: publisher.connected, 40)
    held = _retained(mosquitto, "#")
    assert held["homeassistant/sensor/pi-1_air_pm2_5/config"] == b'{"name": "PM2.5"}'
    assert held["homeassistant/sensor/pi-1_air_pm10/config"] == b'{"name": "PM10"}'
    assert "fabcity/v1/lab/pi-1/meta" in held

    publisher.forget("homeassistant/sensor/pi-1_air_pm10/config")
    time.sleep(0.3)
    held = _retained(mosquitto, "homeassistant/#")
    publisher.stop()
    assert list(held) == ["homeassistant/sensor/pi-1_air_pm2_5/config"]


def test_retaining_the_same_payload_again_publishes_nothing(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    publisher = _publisher(mosquitto, tmp_path)
    publisher.start()
    _wait(lambda: publisher.connected)
    sent: list[str] = []
    original = publisher.client.publish

    def counting(topic: str, *args: object, **kwargs: object) -> object:
        sent.append(topic)
        return original(topic, *args, **kwargs)  # type: ignore[arg-type]

    publisher.client.publish = counting  # type: ignore[method-assign]
    publisher.retain("x/config", b"1")
    publisher.retain("x/config", b"1")
    publisher.retain("x/config", b"2")
    publisher.stop()
    assert sent.count("x/config") == 2


def test_reconnect_attempts_double_with_jitter_so_agents_do_not_return_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and hangs up at once: the publisher's attempts come after waits
    of half a step fixed plus half random, the step doubling per failure up to the maximum."""
    monkeypatch.setattr("edge.publisher.RECONNECT_MIN_S", 0.1)
    monkeypatch.setattr("edge.publisher.RECONNECT_MAX_S", 0.4)
    attempts: list[float] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    publisher = Publisher("lab", "pi-1", Buffer(tmp_path / "buffer.db"),
                          MqttConfig(url=f"mqtt://127.0.0.1:{server.getsockname()[1]}"),
                          PublishConfig())
    publisher.start()
    deadline = time.monotonic() + 6
    try:
        while len(attempts) < 8 and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                conn, _ = server.accept()
                attempts.append(time.monotonic())
                conn.close()
    finally:
        publisher.stop(timeout_s=0.1)
        server.close()
    assert len(attempts) == 8, attempts
    waits = [b - a for a, b in itertools.pairwise(attempts)]
    steps = [0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4]
    for wait, step in zip(waits, steps, strict=True):
        assert step / 2 - 0.02 <= wait <= step + 0.5, (waits, steps)  # + a loaded machine
    capped = waits[2:]
    assert max(capped) - min(capped) > 0.01, f"no jitter at the cap: {capped}"
