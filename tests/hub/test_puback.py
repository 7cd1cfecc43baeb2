"""PUBACKs in one write, against a real Mosquitto: what was acked is gone, the rest comes back."""

import threading
import time
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.puback import ack_all
from tests.servers import Mosquitto

TOPIC = "fabcity/v1/lab/pi-1/readings"


class Subscriber:
    """A manual-ack QoS 1 subscriber with a persistent session, noting what it receives."""

    def __init__(self, broker: Mosquitto, protocol: int, client_id: str) -> None:
        self.received: list[tuple[bytes, int]] = []  # (payload, mid)
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol, manual_ack=True,
                                  **({} if protocol == paho.MQTTv5 else {"clean_session": False}))
        self.client.on_message = self._on_message
        if protocol == paho.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 600
            self.client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(TOPIC, qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.received.append((msg.payload, msg.mid))

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 15
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} received"
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(broker: Mosquitto, count: int) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="puback-publisher")
    client.max_inflight_messages_set(count)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for info in [client.publish(TOPIC, b"%d" % i, qos=1) for i in range(count)]:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311])
def test_messages_acked_in_one_write_are_not_redelivered_and_the_others_are(
    mosquitto: Mosquitto, protocol: int
) -> None:
    client_id = f"puback-{protocol}"
    sub = Subscriber(mosquitto, protocol, client_id)
    time.sleep(0.2)  # subscribed
    publish(mosquitto, 300)
    sub.wait_for(300)
    ack_all(sub.client, [mid for _payload, mid in sub.received[:200]])
    time.sleep(0.5)  # written by paho's thread, taken by the broker
    sub.close()

    again = Subscriber(mosquitto, protocol, client_id)  # the session resumes
    again.wait_for(100)
    time.sleep(0.5)  # and nothing more comes
    ack_all(again.client, [mid for _payload, mid in again.received])
    again.close()
    assert sorted(int(p) for p, _mid in again.received) == list(range(200, 300))
