"""The live stream of a hub process that does not ingest (``fabcity hub api``).

Ingest runs elsewhere (other processes, maybe shared subscriptions splitting the readings
between them), so this process subscribes to every device's readings itself, without a
shared group, as a throw-away MQTT session at QoS 0: what it misses while disconnected a
resuming client gets from storage (:mod:`hub.live_replay`). Batches are decoded with the
same rules as ingest and handed to the :class:`~hub.live.LiveBroadcaster`.

The difference with the stream of ``fabcity hub serve``: readings are shown when the broker
delivers them, usually a few milliseconds before ingest has stored them, and a reading the
storage then refuses for good (a dead letter) has been shown.
"""

import logging
import os
import socket
import threading
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import decode_batch
from fabcity.errors import BadReading
from fabcity.link import LinkReporter, connack_hint
from fabcity.logs import rate_limited
from fabcity.mqtt import BrokerAddress, apply_credentials
from fabcity.topic import Kind, Topic, subscription
from hub.config import HubMqttConfig, IngestConfig
from hub.live import LiveBroadcaster

__all__ = ["LiveFeed", "live_client_id"]

log = rate_limited(logging.getLogger(__name__))

RECONNECT_MAX_S = 30


def live_client_id(client_id: str) -> str:
    """A client id of its own for each API process (never a persistent session)."""
    return f"{client_id}-live-{socket.gethostname()[:24]}-{os.getpid()}"


class LiveFeed:
    """Readings from the broker to the live clients of this process."""

    def __init__(self, address: BrokerAddress, mqtt: HubMqttConfig, ingest: IngestConfig,
                 live: LiveBroadcaster, protocol: Literal["v5", "v311"] = "v5") -> None:
        self.cfg = ingest
        self.live = live
        self.address = address
        self.mqtt = mqtt
        self.protocol = protocol
        self._connected = threading.Event()
        self._stopping = False
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=live_client_id(mqtt.client_id),
            protocol=paho.MQTTv5 if protocol == "v5" else paho.MQTTv311)
        apply_credentials(self.client, address, mqtt.username, mqtt.password, mqtt.ca_file)
        self.client.reconnect_delay_set(1, RECONNECT_MAX_S)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.link = LinkReporter(log, address, "hub live stream", mqtt.ca_file, RECONNECT_MAX_S)
        self._topics: dict[str, Topic] = {}

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background; returns at once."""
        if self.protocol == "v5":
            self.client.connect_async(self.address.host, self.address.port,
                                      self.mqtt.keepalive_s, clean_start=True)
        else:
            self.client.connect_async(self.address.host, self.address.port,
                                      self.mqtt.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.on_message = None
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if reason.is_failure:
            self.link.failed(connack_hint(reason))
            return
        self.link.connected()
        client.subscribe(subscription(Kind.READINGS), qos=0)
        self._connected.set()

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any = None) -> None:
        if self._connected.is_set() and not self._stopping:
            self.link.lost(reason)
        self._connected.clear()

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        if not self._stopping:
            self.link.connect_failed()

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = self._topics.get(msg.topic)
            if topic is None:
                topic = Topic.parse(msg.topic)
                if len(self._topics) < 100_000:
                    self._topics[msg.topic] = topic
            batch = decode_batch(topic, bytes(msg.payload), max_future_s=self.cfg.max_future_s,
                                 max_age_s=self.cfg.max_age_s)
        except BadReading:
            return  # ingest counts and logs it; the live stream only shows good readings
        if batch.readings:
            self.live.publish(batch.readings)
