"""The publisher: drains the buffer to the broker in QoS 1 batches.

With ``[publish] confirm`` (the default) rows leave the buffer only when the hub confirms on
the device's ``ack`` topic that it has stored them: a PUBACK only means the broker holds the
message in memory, and a broker that crashes before its next snapshot forgets it. Without it,
rows leave on the broker's PUBACK. paho resends messages the broker has not PUBACKed itself
after a reconnect; batches the broker took but the hub has not confirmed are resent by us,
after a reconnect (a confirmation published meanwhile was lost) or after
``confirm_timeout_s`` (probing with one batch, with backoff, while the hub says nothing). If
the process dies first, the rows are still in the buffer and go out again after the restart:
the hub's storage is idempotent on the reading identity, so a replay stores nothing twice.

Reconnects wait an exponential backoff with jitter (:mod:`fabcity.backoff`): when a broker
restarts, its agents do not all come back in the same instant.
"""

import bisect
import contextlib
import logging
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.buffer import Buffer
from edge.config import MqttConfig, PublishConfig
from fabcity import __version__
from fabcity.ack import decode_ack, merge_ranges
from fabcity.backoff import jittered_backoff_s
from fabcity.codec import MAX_PAYLOAD_BYTES, encode_batch
from fabcity.device import DeviceMeta, Status, encode_meta, encode_status
from fabcity.errors import BadReading
from fabcity.link import LinkReporter, connack_hint
from fabcity.logs import rate_limited
from fabcity.mqtt import apply_credentials, parse_broker_url
from fabcity.reading import Reading, format_ts, now_ms
from fabcity.topic import Kind, Topic

__all__ = ["Publisher"]

log = logging.getLogger(__name__)
ack_log = rate_limited(logging.getLogger(__name__ + ".ack"))  # one line per bad ack at most

STATUS_INTERVAL_S = 60.0
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
_DELETE_INTERVAL_S = 0.05  # acked rows are deleted in groups: one transaction, many messages
#: While the hub confirms nothing, unconfirmed batches are probed (one at a time) at most
#: this far apart: the resend interval doubles from ``confirm_timeout_s`` up to here.
RESEND_MAX_S = 300.0


@dataclass(slots=True)
class _Sent:
    """One published batch: the buffer ids it covers and where it stands."""

    first: int
    last: int
    count: int
    mid: int | None  # paho holds it until the broker's PUBACK; None once the broker has it
    due: float = 0.0  # monotonic time to resend it if the hub has not confirmed it
    done: bool = False  # confirmed (or PUBACKed without confirm): its rows may go


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
        self.ack_topic = str(Topic(site, device, Kind.ACK))
        self.address = parse_broker_url(mqtt.url)
        self.published = 0  # readings confirmed by the hub (or PUBACKed) since start
        self.resent = 0  # readings sent again because the hub did not confirm them in time
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._inflight: dict[int, _Sent] = {}  # mid -> batch paho holds until its PUBACK
        # Confirm mode: first buffer id -> batch the hub has not confirmed yet, oldest first.
        self._unconfirmed: dict[int, _Sent] = {}
        self._unconfirmed_readings = 0
        #: Whether batches wait for the hub's confirmation; off if the broker refuses the
        #: subscription to the ack topic (an older ACL): then the PUBACK is enough again.
        self.confirming = publish.confirm
        self._resend_s = publish.confirm_timeout_s  # doubles while the hub confirms nothing
        self._last_confirmed = time.monotonic()
        self._silence_logged = False
        self._reconnected = False  # set by paho's thread: resend what waits for confirmation
        self._next_due = math.inf  # no unconfirmed batch is due before this (monotonic s)
        self._acked_mids: deque[int] = deque()  # filled by paho's thread
        self._confirmed: deque[list[tuple[int, int]]] = deque()  # ack ranges, paho's thread
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
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
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
        if self.confirming:
            # Subscribed before any readings go out on this connection, so no confirmation
            # of them is missed. Clean session: confirmations sent while we were away are
            # gone, hence the resend of everything unconfirmed (_reconnected).
            client.subscribe(self.ack_topic, qos=1)
            self._reconnected = True
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

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic != self.ack_topic:
            return
        try:
            ranges = decode_ack(bytes(msg.payload))
        except BadReading as exc:
            ack_log.warning("ignored a bad confirmation on %s (%s): %s", msg.topic, exc.reason,
                            exc)
            return
        self._confirmed.append(ranges)  # atomic, like _acked_mids: no lock on paho's thread
        self._wake.set()

    def _on_subscribe(self, _client: paho.Client, _userdata: Any, _mid: int,
                      reasons: list[Any], _props: Any) -> None:
        if reasons and reasons[0].is_failure and self.confirming:
            log.error("the broker refused the subscription to %s (%s): the hub's "
                      "confirmations cannot reach this device, so readings now leave the "
                      "buffer on the broker's PUBACK, as with [publish] confirm = false. "
                      "The ACL must let the device read its own ack topic (docs/security.md)",
                      self.ack_topic, reasons[0])
            self.confirming = False
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
        """Turn PUBACKs and the hub's confirmations into buffer ranges to delete."""
        with self._lock:
            while self._acked_mids:
                sent = self._inflight.pop(self._acked_mids.popleft(), None)
                if sent is None:
                    continue
                sent.mid = None  # the broker holds it now (in memory only, until a snapshot)
                if not self.confirming:
                    self._done(sent)
                elif not sent.done:  # the timeout runs from the moment the broker took it
                    sent.due = time.monotonic() + self._resend_s
                    self._next_due = min(self._next_due, sent.due)
            if not self.confirming and self._unconfirmed:  # confirmation just turned off
                for sent in list(self._unconfirmed.values()):
                    if sent.mid is None:
                        self._done(sent)
            while self._confirmed:
                self._apply_confirmation(self._confirmed.popleft())

    def _done(self, sent: _Sent) -> None:
        """The batch's rows may leave the buffer (call with the lock held)."""
        if sent.done:
            return
        sent.done = True
        self._acked.append((sent.first, sent.last))
        self.published += sent.count
        if self._unconfirmed.pop(sent.first, None) is not None:
            self._unconfirmed_readings -= sent.count

    def _apply_confirmation(self, ranges: list[tuple[int, int]]) -> None:
        """Release every unconfirmed batch that lies inside a confirmed range; batches the
        hub did not name (or only partly) stay and are resent later (call with the lock)."""
        merged = merge_ranges(ranges)
        starts = [first for first, _ in merged]
        for sent in list(self._unconfirmed.values()):
            at = bisect.bisect_right(starts, sent.first) - 1
            if at >= 0 and sent.last <= merged[at][1]:
                self._done(sent)
        self._last_confirmed = time.monotonic()
        self._resend_s = self.cfg.confirm_timeout_s
        if self._silence_logged:
            log.info("the hub confirms stored readings again (%d still unconfirmed)",
                     self._unconfirmed_readings)
            self._silence_logged = False

    def _delete_acked(self) -> None:
        self._collect_acks()
        with self._lock:
            acked, self._acked = self._acked, []
        if acked:
            self.buffer.remove(acked)

    def _send_batches(self, linger: bool = True) -> float | None:
        """Publish batches while the window allows; return seconds to linger, if any."""
        self._collect_acks()
        if self.confirming:
            self._resend_unconfirmed()
        while True:
            with self._lock:
                if len(self._inflight) >= self.cfg.max_inflight or not self.connected:
                    return None
                if self.confirming and self._unconfirmed_readings >= self.cfg.max_unconfirmed:
                    return None  # the window is full: wait for the hub
                rows = self.buffer.take(self._cursor, self.cfg.batch_size)
                if not rows:
                    return None
                if linger and len(rows) < self.cfg.batch_size and self.cfg.linger_s > 0:
                    age_s = (now_ms() - rows[0][1].ts_ms) / 1000
                    if 0 <= age_s < self.cfg.linger_s:  # wait briefly for a fuller batch
                        return self.cfg.linger_s - age_s
                payload = self._encode(rows)
                while len(payload) > MAX_PAYLOAD_BYTES and len(rows) > 1:
                    rows = rows[: len(rows) // 2]  # long names or many flags: send fewer
                    payload = self._encode(rows)
                sent = _Sent(rows[0][0], rows[-1][0], len(rows), None)
                if not self._publish(payload, sent):
                    return None
                if self.confirming:
                    sent.due = time.monotonic() + self._resend_s
                    self._next_due = min(self._next_due, sent.due)
                    self._unconfirmed[sent.first] = sent
                    self._unconfirmed_readings += sent.count
                self._cursor = sent.last

    def _encode(self, rows: list[tuple[int, Reading]], first: int | None = None,
                last: int | None = None) -> bytes:
        """A readings payload of ``rows``; with confirm, it covers buffer ids first..last."""
        return encode_batch(rows[-1][0] if last is None else last,
                            [reading for _, reading in rows],
                            first=rows[0][0] if first is None else first,
                            confirm=self.confirming)

    def _publish(self, payload: bytes, sent: _Sent) -> bool:
        """Hand one batch to paho (call with the lock held); False if its queue is full."""
        info = self.client.publish(self.readings_topic, payload, qos=1)
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            return False
        sent.mid = info.mid
        self._inflight[info.mid] = sent
        return True

    def _resend_unconfirmed(self) -> None:
        """Send again the batches the broker took but the hub has not confirmed in time.

        Only batches the broker PUBACKed: paho resends the others itself after a reconnect,
        and sending them twice would double the load. After a reconnect every one of them
        goes again (a confirmation sent while we were away is lost for good). Otherwise,
        while the hub has confirmed nothing for a ``confirm_timeout_s`` (down, or catching up
        on a backlog that holds these very batches), one batch goes as a probe and the
        interval doubles up to :data:`RESEND_MAX_S`: a dead hub costs a message now and then,
        not a window's worth every few seconds.
        """
        now = time.monotonic()
        with self._lock:
            if self._reconnected:
                self._reconnected = False
                for sent in self._unconfirmed.values():
                    if sent.mid is None:  # paho resends the others itself, PUBACK and all
                        sent.due = 0.0
                self._last_confirmed = now  # resend all of them once, then time again
            elif now < self._next_due:
                return  # the common case: called at every wake-up, nothing to look at
            due: list[_Sent] = []
            self._next_due = math.inf
            for sent in self._unconfirmed.values():
                if sent.due > now:
                    self._next_due = min(self._next_due, sent.due)
                elif sent.mid is None:
                    due.append(sent)
                else:  # paho still holds it: look again shortly
                    self._next_due = min(self._next_due, now + 0.5)
            if not due:
                return
            silent_s = now - self._last_confirmed
            probing = silent_s >= self.cfg.confirm_timeout_s
            if probing:
                if not self._silence_logged:
                    log.warning("the hub has confirmed nothing for %.0f s (%d readings "
                                "unconfirmed): it is down or behind, or older than this agent "
                                "(then set [publish] confirm = false); probing with one batch, "
                                "at most every %.0f s", silent_s, self._unconfirmed_readings,
                                RESEND_MAX_S)
                    self._silence_logged = True
                for sent in due[1:]:
                    sent.due = now + self._resend_s
                    self._next_due = min(self._next_due, sent.due)
                due = due[:1]
            for sent in due:
                if len(self._inflight) >= self.cfg.max_inflight or not self.connected:
                    break
                rows = [row for row in self.buffer.take(sent.first - 1, sent.count)
                        if row[0] <= sent.last]
                if not rows:  # dropped by a full buffer meanwhile: nothing left to confirm
                    self._unconfirmed.pop(sent.first, None)
                    self._unconfirmed_readings -= sent.count
                    continue
                if not self._publish(self._encode(rows, sent.first, sent.last), sent):
                    break
                sent.due = now + self._resend_s
                self.resent += len(rows)
            self._next_due = min([self._next_due, *(sent.due for sent in due)])
            if probing:
                self._resend_s = min(self._resend_s * 2, RESEND_MAX_S)
