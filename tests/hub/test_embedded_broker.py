"""The embedded broker refuses packets larger than the hub takes, from their fixed header,
before reading them, and other clients' messages keep flowing."""

import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import MAX_PAYLOAD_BYTES
from hub.broker import MAX_PACKET_BYTES, EmbeddedBroker
from tests.servers import closed_by_peer

TOPIC = "fabcity/v1/lab/pi-1/readings"


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    embedded = EmbeddedBroker()
    embedded.start()
    yield embedded
    embedded.stop()


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _connect(broker: EmbeddedBroker, client_id: str) -> socket.socket:
    """A raw MQTT 3.1.1 connection, CONNACK read."""
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    body = (b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(client_id))
            + client_id.encode())
    sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00"
    return sock


def _subscriber(broker: EmbeddedBroker, got: list[int]) -> paho.Client:
    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="watcher",
                         protocol=paho.MQTTv311)
    client.on_subscribe = lambda *args: ready.set()
    client.on_message = lambda _c, _u, msg: got.append(len(msg.payload))
    client.connect(broker.host, broker.port)
    client.subscribe("fabcity/#", qos=1)
    client.loop_start()
    assert ready.wait(5)
    return client


def _publish(sock: socket.socket, payload_size: int, head: bool = False) -> None:
    """A QoS 0 PUBLISH with a payload of ``payload_size`` bytes (only its header if ``head``)."""
    variable = struct.pack("!H", len(TOPIC)) + TOPIC.encode()
    size = len(variable) + payload_size
    sock.sendall(b"\x30" + _remaining_length(size) + variable
                 + (b"" if head else b"p" * payload_size))


def test_the_header_of_a_256_mb_publish_closes_the_connection_at_once(
        broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture) -> None:
    got: list[int] = []
    watcher = _subscriber(broker, got)
    try:
        with caplog.at_level(logging.WARNING):
            flood = _connect(broker, "flood")
            _publish(flood, 256 * 1024 * 1024 - 1 - 2 - len(TOPIC), head=True)
            # The broker waits for nothing more: it closes the connection on the header.
            assert closed_by_peer(flood, 5)
            flood.close()
        good = _connect(broker, "pi-1")
        _publish(good, 100)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [100]
        assert closed_by_peer(good, 0.3) is False  # a good client stays connected
        good.close()
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    refusals = [r for r in caplog.records if r.name == "hub.broker.refused"]
    assert len(refusals) == 1 and str(MAX_PACKET_BYTES) in refusals[0].getMessage()
    assert not [r for r in caplog.records if "PacketTooLarge" in r.getMessage()]


def test_a_payload_at_the_hubs_limit_passes_one_above_the_packet_limit_does_not(
        broker: EmbeddedBroker) -> None:
    got: list[int] = []
    watcher = _subscriber(broker, got)
    try:
        near = _connect(broker, "pi-near")
        _publish(near, MAX_PAYLOAD_BYTES)
        over = _connect(broker, "pi-over")
        variable = 2 + len(TOPIC)
        _publish(over, MAX_PACKET_BYTES - variable + 1)
        assert closed_by_peer(over, 5)
        _publish(near, 10)
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [MAX_PAYLOAD_BYTES, 10]
        near.close()
        over.close()
    finally:
        watcher.loop_stop()
        watcher.disconnect()
