"""The publisher: drains the buffer to the broker in QoS 1 batches.

Rows leave the buffer only when the broker's PUBACK for their message arrives; paho resends
unacknowledged messages itself after a reconnect. If the process dies first, the rows are
still in the buffer and go out again after the restart: the hub's storage is idempotent on
the reading identity, so a replay stores nothing twice.

Reconnects wait an exponential backoff with jitter (:mod:`fabcity.backoff`): when a broker
restarts, its agents do not all come back in the same instant.
"""

import contextlib
import logging
import random
import threading
import time
from collections import deque
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.buffer import Buffer
from edge.config import MqttConfig, PublishConfig
from fabcity import __version__
from fabcity.backoff import jittered_backoff_s
from fabcity.codec import MAX_PAYLOAD_BYTES, encode_batch
from fabcity.device import DeviceMeta, Status, encode_meta, encode_status
from fabcity.link import LinkReporter, connack_hint
from fabcity.mqtt import apply_credentials, parse_broker_url
from fabcity.reading import format_ts, now_ms
from fabcity.topic import Kind, Topic

__all__ = ["Publisher"]

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 60.0
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
_DELETE_INTERVAL_S = 0.05  # acked rows are deleted in groups: one transaction, many messages


class Publisher:
    """Moves readings from a :class:`Buffer` to the broker, one device's topics."""

    def __init__(
        self,
        site: str,
        device: str,
        buffer: Buffer,
        mqtt: MqttConfig,
        publish: PublishConfig,
        meta: DeviceMeta | None = None,
    ) -> None:
        self.buffer = buffer
        self.cfg = publish
        self.meta = meta
        self.readings_topic = str(Topic(site, device, Kind.READINGS))
        self.status_topic = str(Topic(site, device, Kind.STATUS))
        self.meta_topic = str(Topic(site, device, Kind.META))
        self.address = parse_broker_url(mqtt.url)
        self.published = 0  # readings acknowledged by the broker since start
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._inflight: dict[int, tuple[int, int, int]] = {}  # mid -> (first id, last id, n)
        self._acked_mids: deque[int] = deque()  # filled by paho's thread
        self._acked: list[tuple[int, int]] = []  # buffer id ranges to delete
        self._cursor = 0  # highest buffer id handed to paho
        self._thread: threading.Thread | None = None
        self._reconnect_attempt = 0  # failed attempts since the last accepted connection
        self._rng = random.Random()  # noqa: S311 - jitter, not secrecy
        # Retained messages (meta, Home Assistant discovery…), republished on every connect:
        # a broker that lost them (restarted without persistence) gets them back.
        self._retained: dict[str, bytes] = {}
        self._retained_lock = threading.Lock()
        if meta is not None:
            self._retained[self.meta_topic] = encode_meta(meta)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=mqtt.client_id or f"fabcity-edge-{site}-{device}",
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        apply_credentials(self.client, self.address, mqtt.username, mqtt.password, mqtt.ca_file)
        self.client.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)
        self.client.max_inflight_messages_set(publish.max_inflight)
        self.client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # until a failure
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._keepalive = mqtt.keepalive_s
        self.link = LinkReporter(log, self.address, "edge agent", mqtt.ca_file, RECONNECT_MAX_S,
                                 context=lambda: f"{len(self.buffer):,} readings buffered")

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected.is_set()

    def _next_reconnect_delay(self) -> None:
        """Set the wait before paho's next reconnect attempt: jittered, doubling per failure.

        paho calls ``on_disconnect`` or ``on_connect_fail`` and only then waits its reconnect
        delay (``reconnect_delay_set`` restarts its doubling at the minimum), so setting
        minimum = maximum here makes its next wait exactly ours. paho annotates the delays as
        ``int`` but sleeps them as floats.
        """
        delay_s = jittered_backoff_s(self._reconnect_attempt, RECONNECT_MIN_S, RECONNECT_MAX_S,
                                     self._rng)
        self._reconnect_attempt += 1
        self.client.reconnect_delay_set(delay_s, delay_s)  # type: ignore[arg-type]

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        return encode_status(Status(
            state=state, ts=format_ts(now_ms()), version=__version__,
            uptime_s=round(time.monotonic() - self._started, 1), buffered=len(self.buffer),
            dropped=self.buffer.dropped))

    def start(self) -> None:
        """Connect in the background and start draining; returns at once."""
        self.client.connect_async(self.address.host, self.address.port, self._keepalive)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def set_meta(self, meta: DeviceMeta) -> None:
        """Replace the retained device description and publish it if it changed."""
        self.meta = meta
        self.retain(self.meta_topic, encode_meta(meta))

    def retain(self, topic: str, payload: bytes) -> None:
        """Keep ``payload`` retained on ``topic``: published now if it changed, and again on
        every connect."""
        with self._retained_lock:
            if self._retained.get(topic) == payload:
                return
            self._retained[topic] = payload
        if self.connected:
            self.client.publish(topic, payload, qos=1, retain=True)

    def forget(self, topic: str) -> None:
        """Stop retaining ``topic`` and clear it at the broker (an empty retained message)."""
        with self._retained_lock:
            if self._retained.pop(topic, None) is None:
                return
        if self.connected:
            self.client.publish(topic, b"", qos=1, retain=True)

    @property
    def retained(self) -> dict[str, bytes]:
        """A copy of the retained set (topic -> payload)."""
        with self._retained_lock:
            return dict(self._retained)

    def wake(self) -> None:
        """Tell the publisher that new readings are in the buffer."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is buffered (for up to ``timeout_s``), say ``offline``, and disconnect.

        Readings the broker has not acknowledged by then stay in the buffer for next time.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._flush(timeout_s)
        if self.connected:
            info = self.client.publish(self.status_topic, self._status("offline"), qos=1,
                                       retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    # paho callbacks run on paho's network thread.
    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if reason.is_failure:
            self.link.failed(connack_hint(reason))
            return  # paho disconnects, and on_disconnect sets the wait
        self._reconnect_attempt = 0
        self.link.connected()
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        # Taken under our lock, published outside it: paho holds its own lock while it calls
        # back, and our publishing thread may hold ours while waiting for paho's.
        for topic, payload in self.retained.items():
            client.publish(topic, payload, qos=1, retain=True)
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any = None) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            self.link.lost(reason)
        self._connected.clear()
        self._next_reconnect_delay()

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        if not self._stop.is_set():
            self.link.connect_failed()
        self._next_reconnect_delay()

    def _on_publish(self, _client: paho.Client, _userdata: Any, mid: int, _reason: Any,
                    _props: Any) -> None:
        # paho holds its message lock here and our publishing thread may be waiting on it
        # while holding ours: taking a lock here would deadlock. A deque append is atomic.
        self._acked_mids.append(mid)
        self._wake.set()

    # The draining loop runs on its own thread.
    def _run(self) -> None:
        last_status = time.monotonic()
        last_delete = 0.0
        wait_s = 0.5
        while not self._stop.is_set():
            self._wake.wait(wait_s)
            self._wake.clear()
            wait_s = 0.5
            now = time.monotonic()
            if now - last_delete >= _DELETE_INTERVAL_S:
                self._delete_acked()
                last_delete = now
            if not self.connected:
                continue
            linger_s = self._send_batches()
            if linger_s is not None:
                wait_s = min(wait_s, linger_s)
            if now - last_status >= STATUS_INTERVAL_S:
                self.client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
                last_status = now

    def _flush(self, timeout_s: float) -> None:
        """Publish without lingering until the buffer is empty or time runs out."""
        deadline = time.monotonic() + timeout_s
        while self.connected and time.monotonic() < deadline:
            self._delete_acked()
            if len(self.buffer) == 0:
                return
            self._send_batches(linger=False)
            self._wake.wait(0.05)
            self._wake.clear()
        self._delete_acked()

    def _collect_acks(self) -> None:
        """Turn PUBACKed message ids into buffer ranges to delete."""
        with self._lock:
            while self._acked_mids:
                entry = self._inflight.pop(self._acked_mids.popleft(), None)
                if entry is not None:
                    self._acked.append((entry[0], entry[1]))
                    self.published += entry[2]

    def _delete_acked(self) -> None:
        self._collect_acks()
        with self._lock:
            acked, self._acked = self._acked, []
        if acked:
            self.buffer.remove(acked)

    def _send_batches(self, linger: bool = True) -> float | None:
        """Publish batches while the window allows; return seconds to linger, if any."""
        self._collect_acks()
        while True:
            with self._lock:
                if len(self._inflight) >= self.cfg.max_inflight or not self.connected:
                    return None
                rows = self.buffer.take(self._cursor, self.cfg.batch_size)
                if not rows:
                    return None
                if linger and len(rows) < self.cfg.batch_size and self.cfg.linger_s > 0:
                    age_s = (now_ms() - rows[0][1].ts_ms) / 1000
                    if 0 <= age_s < self.cfg.linger_s:  # wait briefly for a fuller batch
                        return self.cfg.linger_s - age_s
                payload = encode_batch(rows[-1][0], [reading for _, reading in rows])
                while len(payload) > MAX_PAYLOAD_BYTES and len(rows) > 1:
                    rows = rows[: len(rows) // 2]  # long names or many flags: send fewer
                    payload = encode_batch(rows[-1][0], [reading for _, reading in rows])
                first, last = rows[0][0], rows[-1][0]
                info = self.client.publish(self.readings_topic, payload, qos=1)
                if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
                    return None
                self._inflight[info.mid] = (first, last, len(rows))
                self._cursor = last
