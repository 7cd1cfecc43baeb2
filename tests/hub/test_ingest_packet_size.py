"""Huge messages never reach the hub: it announces a Maximum Packet Size over MQTT v5, and a
broker without a size limit of its own drops larger messages for it instead of sending them;
good readings keep flowing around them."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import MAX_PAYLOAD_BYTES, encode_batch
from fabcity.mqtt import parse_broker_url
from fabcity.reading import Reading, now_ms
from hub.config import HubMqttConfig, IngestConfig
from hub.ingest import MAX_PACKET_BYTES, Ingest
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto


class UnlimitedMosquitto(Mosquitto):
    """The project's broker configuration without its ``message_size_limit``: what the hub
    meets on a broker someone else configured."""

    def _write_conf(self) -> None:
        super()._write_conf()
        lines = self.conf.read_text().splitlines()
        self.conf.write_text("\n".join(line for line in lines
                                       if not line.startswith("message_size_limit")) + "\n")


def _wait(predicate: object, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _sample(metrics: HubMetrics, name: str) -> float:
    total = 0.0
    for family in metrics.prometheus.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


def test_the_broker_drops_messages_above_the_hubs_packet_size_and_good_ones_flow(
        tmp_path: Path) -> None:
    broker = UnlimitedMosquitto(tmp_path / "mosquitto").start()
    assert "message_size_limit" not in broker.conf.read_text()
    storage = SqliteStorage(tmp_path / "hub.db")
    metrics = HubMetrics()
    received: list[int] = []
    ingest = Ingest(parse_broker_url(broker.url), HubMqttConfig(url=broker.url, client_id="hub"),
                    IngestConfig(), storage, DeviceRegistry(tmp_path / "registry.db"), metrics,
                    protocol="v5")
    on_message = ingest._on_message

    def counting(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        received.append(len(msg.payload))
        on_message(client, userdata, msg)

    ingest.client.on_message = counting
    ingest.start()
    try:
        _wait(lambda: ingest.connected)
        time.sleep(0.3)  # subscribed
        publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-flood",
                                protocol=paho.MQTTv5)
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        base = now_ms() - 60_000
        topic = "fabcity/v1/lab/pi-1/readings"
        infos = []
        for i in range(20):
            infos.append(publisher.publish(topic, encode_batch(i, [
                Reading("lab", "pi-1", "seq", "sequence", i, base + i, "1")]), qos=1))
            if i % 5 == 0:  # huge messages in between good ones
                infos.append(publisher.publish(topic, b"x" * (2 * 1024 * 1024), qos=1))
        # one just below the hub's limit still arrives (and is refused as bad JSON)
        infos.append(publisher.publish(topic, b"y" * MAX_PAYLOAD_BYTES, qos=1))
        for info in infos:
            info.wait_for_publish(10)
        publisher.disconnect()
        publisher.loop_stop()
        _wait(lambda: len(storage.query(ReadingQuery(0, 2**62))) == 20)
        _wait(lambda: MAX_PAYLOAD_BYTES in received)
    finally:
        ingest.stop()
        broker.stop()
    assert max(received) == MAX_PAYLOAD_BYTES < MAX_PACKET_BYTES
    assert len(received) == 21  # 20 good and the one at the limit; no 2 MB message
    assert _sample(metrics, "fabcity_rejected_total") == 1  # the "y" payload, not the floods
    log = (tmp_path / "mosquitto" / "mosquitto.log").read_text()
    assert "Error" not in log, log
