"""Confirmations against a real Mosquitto: sent after the write, one per device per write
batch, only to devices that asked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.buffer import Buffer
from edge.config import MqttConfig, PublishConfig
from edge.publisher import Publisher
from fabcity.codec import encode_batch
from fabcity.errors import ReadingsRefused
from fabcity.mqtt import parse_broker_url
from fabcity.reading import Reading, now_ms
from hub.config import HubMqttConfig, IngestConfig
from hub.deadletters import DeadLetters
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto


def _wait(predicate: Callable[[], object], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class GatedStorage(SqliteStorage):
    """SQLite whose writes wait until the test opens the gate; readings valued 13 are refused
    for good (as InfluxDB refuses a point beyond its retention policy)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()

    def write(self, readings: Sequence[Reading]) -> int:
        self.gate.wait(30)
        stored = super().write([r for r in readings if r.value != 13])
        if any(r.value == 13 for r in readings):
            raise ReadingsRefused("partial write: points beyond retention policy dropped=1")
        return stored


class Watcher:
    """Records every ack message on the broker, as (topic, payload)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.seen: list[tuple[str, dict[str, object]]] = []
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
        self.client.on_message = lambda _c, _u, m: self.seen.append(
            (m.topic, json.loads(m.payload)))
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("fabcity/v1/+/+/ack", qos=1)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _batch(device: str, first: int, values: list[float], confirm: bool) -> bytes:
    base = now_ms() - 60_000 + first
    readings = [Reading("lab", device, "air", "co2", v, base + i, "ppm")
                for i, v in enumerate(values)]
    return encode_batch(first + len(values) - 1, readings, first=first, confirm=confirm)


def test_stored_batches_are_confirmed_after_the_write_once_per_device(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    storage = GatedStorage(tmp_path / "hub.db")
    metrics = HubMetrics()
    ingest = Ingest(parse_broker_url(mosquitto.url),
                    HubMqttConfig(url=mosquitto.url, client_id="hub"),
                    IngestConfig(flush_interval_s=1.0), storage,
                    DeviceRegistry(tmp_path / "registry.db"), metrics, protocol="v5",
                    dead_letters=DeadLetters(tmp_path / "state.db"))
    ingest.start()
    watcher = Watcher(mosquitto)
    device = paho.Client(CallbackAPIVersion.VERSION2, client_id="devices")
    device.connect("127.0.0.1", mosquitto.port)
    device.loop_start()
    try:
        _wait(lambda: ingest.connected)
        time.sleep(0.3)  # subscriptions in place
        future = now_ms() + 3_600_000
        sends = [
            ("pi-1", _batch("pi-1", 1, [400, 401], confirm=True)),
            ("pi-2", _batch("pi-2", 1, [500, 501], confirm=False)),  # never asked
            ("pi-1", _batch("pi-1", 3, [402, 13], confirm=True)),  # 13: dead-lettered
            ("pi-1", _batch("pi-1", 7, [403], confirm=True)),  # 5, 6 never arrive
            # refused on decode (a future timestamp): final, so confirmed all the same
            ("pi-1", encode_batch(8, [Reading("lab", "pi-1", "air", "co2", 1, future,
                                              "ppm")], first=8, confirm=True)),
        ]
        for name, payload in sends:
            topic = f"fabcity/v1/lab/{name}/readings"
            device.publish(topic, payload, qos=1).wait_for_publish(5)
        time.sleep(1.5)  # one write batch (flush interval 1 s), held at the gate
        assert watcher.seen == [], "nothing is confirmed before storage took it"
        storage.gate.set()
        _wait(lambda: watcher.seen)
        time.sleep(0.5)  # a second ack message would be here by now
        assert watcher.seen == [("fabcity/v1/lab/pi-1/ack", {"stored": [[1, 4], [7, 8]]})]
        assert metrics.confirmations._value.get() == 1
        kinds = {s.labels["kind"]: s.value for s in metrics.messages_in.collect()[0].samples
                 if s.name.endswith("_total")}
        assert "ack" not in kinds, "the hub does not read its own confirmations (No Local)"
    finally:
        device.disconnect()
        device.loop_stop()
        watcher.close()
        ingest.stop()
        storage.close()


def test_every_worker_of_a_shared_subscription_confirms_what_it_stored(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    workers = []
    for n in (1, 2):
        storage = SqliteStorage(tmp_path / f"hub-{n}.db")
        metrics = HubMetrics()
        ingest = Ingest(parse_broker_url(mosquitto.url),
                        HubMqttConfig(url=mosquitto.url, client_id=f"hub-{n}",
                                      shared_group="confirm-test"),
                        IngestConfig(), storage, DeviceRegistry(tmp_path / f"registry-{n}.db"),
                        metrics, protocol="v5")
        ingest.start()
        workers.append((ingest, storage, metrics))
    watcher = Watcher(mosquitto)
    device = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-1")
    device.connect("127.0.0.1", mosquitto.port)
    device.loop_start()
    try:
        _wait(lambda: all(ingest.connected for ingest, _, _ in workers))
        time.sleep(0.3)  # subscriptions in place
        for batch in range(20):  # batches of 5: sequence numbers 0-4, 5-9, ...
            payload = _batch("pi-1", batch * 5, [float(batch * 5 + i) for i in range(5)], True)
            device.publish("fabcity/v1/lab/pi-1/readings", payload, qos=1).wait_for_publish(5)

        def confirmed() -> set[int]:
            ranges = [pair for _, body in watcher.seen for pair in body["stored"]]  # type: ignore[attr-defined]
            return {n for first, last in ranges for n in range(first, last + 1)}

        _wait(lambda: confirmed() == set(range(100)))
        assert all(metrics.confirmations._value.get() > 0 for _, _, metrics in workers), \
            "both workers stored some batches and confirmed them with their own client"
    finally:
        device.disconnect()
        device.loop_stop()
        watcher.close()
        for ingest, storage, _ in workers:
            ingest.stop()
            storage.close()


def test_a_stopped_workers_turn_reaches_a_live_worker_through_the_agents_resends(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Mosquitto keeps handing a stopped group member its turn; a confirming agent sends
    again what stays unconfirmed, and the copies that the live worker gets are stored."""
    workers = []
    for n in (1, 2):
        storage = SqliteStorage(tmp_path / f"hub-{n}.db")
        ingest = Ingest(parse_broker_url(mosquitto.url),
                        HubMqttConfig(url=mosquitto.url, client_id=f"hub-{n}",
                                      shared_group="resend-test"),
                        IngestConfig(), storage, DeviceRegistry(tmp_path / f"registry-{n}.db"),
                        HubMetrics(), protocol="v5")
        ingest.start()
        workers.append((ingest, storage))
    (live, live_storage), (stopped, stopped_storage) = workers
    buffer = Buffer(tmp_path / "buffer.db")
    base = now_ms() - 60_000
    buffer.put([Reading("lab", "pi-1", "air", "co2", float(i), base + i, "ppm")
                for i in range(500)])
    publisher = Publisher("lab", "pi-1", buffer, MqttConfig(url=mosquitto.url),
                          PublishConfig(batch_size=50, linger_s=0, confirm_timeout_s=0.3))
    try:
        _wait(lambda: live.connected and stopped.connected)
        time.sleep(0.3)  # both in the group
        stopped.stop()  # its session and its turn stay at the broker
        publisher.start()
        _wait(lambda: len(buffer) == 0, 30)
        query = ReadingQuery(metric="co2", start_ms=base - 1, end_ms=base + 1_000)
        assert len(live_storage.query(query)) == 500
        assert publisher.resent > 0
    finally:
        publisher.stop()
        live.stop()
        live_storage.close()
        stopped_storage.close()
        buffer.close()
