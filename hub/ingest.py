"""MQTT ingest: broker -> decode -> storage, each message acked only once it is stored.

paho's network thread only queues messages (``manual_ack``); a writer thread decodes them in
batches, writes each batch in one storage transaction and only then sends the PUBACKs, in the
order the messages came. If the hub dies before, the broker redelivers from the persistent
session; storage is idempotent on the reading identity, so redelivery stores nothing twice.
Devices that asked for it (``"confirm": true``) then get a confirmation on their ``ack``
topic (:mod:`hub.confirm`), sent at the same point as the PUBACKs: after the write.

What happens when a write fails depends on why (see :mod:`hub.storage.base`):

- storage unavailable: the batch is retried with backoff, forever, and nothing is acked;
- readings refused for good: the batch is split until they are found, they go to the dead
  letters (durably), and the rest is stored and acked, so one poisoned reading never stalls
  every device behind it;
- anything else (a bug): retried ``MAX_UNEXPECTED_FAILURES`` times, then ingest gives up,
  acking nothing more, and the hub exits non-zero so systemd restarts it.
"""

import gc
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from fabcity.codec import MAX_PAYLOAD_BYTES, decode_batch
from fabcity.device import decode_meta, decode_status
from fabcity.errors import BadReading, StorageUnavailable
from fabcity.link import LinkReporter, connack_hint
from fabcity.logs import rate_limited
from fabcity.mqtt import BrokerAddress, apply_credentials
from fabcity.reading import Reading, now_ms
from fabcity.topic import PREFIX, Kind, Topic, subscription
from hub.config import HubMqttConfig, IngestConfig
from hub.confirm import ACK_QOS, Confirmations
from hub.deadletters import DeadLetters, write_or_refuse
from hub.last_seen import LastSeenBuffer
from hub.live import LiveBroadcaster
from hub.metrics import HubMetrics
from hub.puback import ack_all
from hub.registry import DeviceRegistry
from hub.storage.base import Storage
from hub.storage.rollup import RollupState

__all__ = ["Ingest"]

log = rate_limited(logging.getLogger(__name__))  # per-message lines must not flood

SESSION_EXPIRY_S = 7 * 86_400  # the broker keeps our queue through a week-long hub outage
#: Announced in CONNECT (MQTT v5 Maximum Packet Size): the largest payload the hub accepts
#: plus room for the fixed header, the topic (at most ~230 bytes) and properties. The broker
#: drops a larger message for the hub instead of sending it (MQTT v5 section 3.1.2.11.4).
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 1024
RETRY_MIN_S = 0.5
RETRY_MAX_S = 30.0
IDLE_WAIT_S = 0.1  # the decoder blocks this long for a first message, then checks for stop
COLLECT_STEP_S = 0.005  # an open batch looks for more messages this often
MAX_CACHED_TOPICS = 100_000
RECONNECT_MAX_S = 30
MAX_UNEXPECTED_FAILURES = 5  # then ingest gives up and the hub exits for systemd to restart


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_ms: int


@dataclass(slots=True)
class _DecodedBatch:
    messages: list[_Message] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    confirms: Confirmations = field(default_factory=Confirmations)


GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect less often: decoding makes and drops several container objects per reading,
    so at Python's default gen-0 threshold (700) the collector runs every few messages and
    rescans everything the process built at start. What exists now (modules, config) is frozen
    out of the collector; the thresholds grow, not the memory held (refcounting frees the
    readings, the collector only breaks cycles)."""
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0 >= GC_GEN0_THRESHOLD:
        return  # done already in this process (or tuned by the operator)
    gc.collect()  # garbage now is not frozen with the rest
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


class Ingest:
    """Subscribes to every device's topics and stores what arrives."""

    def __init__(
        self,
        address: BrokerAddress,
        mqtt: HubMqttConfig,
        ingest: IngestConfig,
        storage: Storage,
        registry: DeviceRegistry,
        metrics: HubMetrics,
        protocol: Literal["v5", "v311"] = "v5",
        dead_letters: DeadLetters | None = None,
        rollups: RollupState | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        live: LiveBroadcaster | None = None,
    ) -> None:
        self.address = address
        self.cfg = ingest
        self.mqtt = mqtt
        self.storage = storage
        self.registry = registry
        self.metrics = metrics
        self.protocol = protocol
        self.dead_letters = dead_letters
        self.rollups = rollups
        self.on_fatal = on_fatal
        self.live = live
        self._refused: list[Reading] = []  # of the last write: dead-lettered, not stored
        #: Why storage is not taking writes and since when (ms), or None while it is.
        self.storage_problem: tuple[str, int] | None = None
        #: The error ingest gave up on; once set, nothing more is acked.
        self.failed: BaseException | None = None
        # paho's thread puts, the decoder gets: SimpleQueue is C code, thread-safe, and lets
        # the decoder block when there is nothing to do instead of polling.
        self._queue: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        metrics.pending.set_function(self._queue.qsize)
        self._stop = threading.Event()
        self._connected = threading.Event()
        #: CONNACKs so far and the last one's session_present (hub.broker_check watches).
        self.connects = 0
        self.session_present: bool | None = None
        self._logged_reasons: set[str] = set()
        self._topics: dict[str, Topic] = {}  # every device publishes on the same few topics
        # Decoded batches wait here for the store thread: decoding batch n+1 overlaps with the
        # commit of batch n (SQLite releases the GIL while it writes). Two keep acks in order.
        self._decoded: queue.Queue[_DecodedBatch | None] = queue.Queue(maxsize=2)
        self._threads: list[threading.Thread] = []
        if protocol == "v5":
            self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=mqtt.client_id,
                                      protocol=paho.MQTTv5, manual_ack=True)
        else:
            self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=mqtt.client_id,
                                      protocol=paho.MQTTv311, clean_session=False,
                                      manual_ack=True)
        apply_credentials(self.client, address, mqtt.username, mqtt.password, mqtt.ca_file)
        self.client.reconnect_delay_set(1, RECONNECT_MAX_S)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.link = LinkReporter(log, address, "hub", mqtt.ca_file, RECONNECT_MAX_S)
        self.client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background and start the writer; returns at once."""
        tune_gc()
        if self.protocol == "v5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self.cfg.receive_maximum
            props.MaximumPacketSize = MAX_PACKET_BYTES  # never read what decode refuses
            self.client.connect_async(self.address.host, self.address.port,
                                      self.mqtt.keepalive_s, clean_start=False, properties=props)
        else:
            self.client.connect_async(self.address.host, self.address.port,
                                      self.mqtt.keepalive_s)
        self._threads = [
            threading.Thread(target=self._decode_loop, name="ingest-decode", daemon=True),
            threading.Thread(target=self._store_loop, name="ingest-store", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.client.loop_start()

    def stop(self, end_session: bool = False) -> None:
        """Store and ack what is queued, then disconnect; unqueued messages stay at the broker
        (``end_session``: the broker drops the session, MQTT v5 only; hub.retire)."""
        self.client.on_message = None
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        if end_session and self.protocol == "v5":
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()
        self.client.loop_stop()
        self.metrics.mqtt_connected.set(0)

    # paho callbacks run on paho's network thread: keep them short.
    def _on_connect(self, client: paho.Client, _userdata: Any, flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if reason.is_failure:
            self.link.failed(connack_hint(reason))
            return
        self.session_present = bool(getattr(flags, "session_present", False))
        self.connects += 1
        session = "resumed" if self.session_present else "new"
        self.link.connected()
        log.info("MQTT %s, %s session, %d messages waiting to be stored", self.protocol,
                 session, self._queue.qsize())
        filters = [f"{PREFIX}/#"]  # everything, so even bad topics are counted
        if self.mqtt.shared_group:
            group = f"$share/{self.mqtt.shared_group}/"
            filters = [group + subscription(Kind.READINGS), subscription(Kind.STATUS),
                       subscription(Kind.META)]
            client.subscribe([(f, 1) for f in filters])
        elif self.protocol == "v5":  # No Local: our own ack messages do not come back to us
            client.subscribe([(f, SubscribeOptions(qos=1, noLocal=True)) for f in filters])
        else:
            client.subscribe([(f, 1) for f in filters])
        self._connected.set()
        self.metrics.mqtt_connected.set(1)

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any = None) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            self.link.lost(reason)
        self._connected.clear()
        self.metrics.mqtt_connected.set(0)

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        if not self._stop.is_set():
            self.link.connect_failed()

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        self._queue.put(_Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, now_ms()))

    # The decode thread: messages -> batches of readings.
    def _decode_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_WAIT_S)
            except queue.Empty:
                if self._stop.is_set():
                    break
                continue
            self._decoded.put(self._decode_one_batch(first))
        self._decoded.put(None)  # tells the store thread to finish

    def _decode_one_batch(self, first: _Message) -> _DecodedBatch:
        """Decode messages until the batch is full or the flush interval ends."""
        batch = _DecodedBatch()
        deadline = time.monotonic() + self.cfg.flush_interval_s
        msg: _Message | None = first
        while msg is not None:
            batch.messages.append(msg)
            try:
                batch.readings.extend(self._decode(msg, batch.seen, batch.kinds,
                                                   batch.confirms))
            except Exception:  # a bug must not stop the flow: count it, keep going
                log.exception("could not decode a message on %r", msg.topic)
                self.metrics.rejected.labels("internal_error").inc()
            if len(batch.readings) >= self.cfg.batch_max_readings:
                break
            msg = self._next_message(deadline)
        return batch

    def _next_message(self, deadline: float) -> _Message | None:
        """The open batch's next message, or None once the flush interval is over.

        A backlog is taken without a clock; an empty queue is looked at again every
        ``COLLECT_STEP_S`` rather than waited on, since a wake-up per message would cost a
        thread switch (and a turn of the GIL) per message.
        """
        get_nowait = self._queue.get_nowait
        while True:
            try:
                return get_nowait()
            except queue.Empty:
                wait_s = deadline - time.monotonic()
                if wait_s <= 0 or self._stop.is_set():
                    return None
                time.sleep(min(wait_s, COLLECT_STEP_S))

    # The store thread: one transaction per batch, then the acks, in arrival order.
    def _store_loop(self) -> None:
        last_seen = LastSeenBuffer(self._write_seen)
        while True:
            try:  # with last-seen times pending, wake up when they are due
                batch = self._decoded.get(timeout=last_seen.due_in() if last_seen.pending
                                          else None)
            except queue.Empty:
                last_seen.flush()
                continue
            if batch is None:
                break
            for kind, count in batch.kinds.items():
                self.metrics.messages_in.labels(kind).inc(count)
            if self.failed is not None or not self._store(batch.readings):
                # Stopping with storage down, or given up: no ack, the broker redelivers the
                # messages to the next session.
                continue
            if batch.seen:
                last_seen.add(batch.seen)
                last_seen.flush_if_due()
            # Subscribed at QoS 1, so every PUBACK goes in one write; QoS 2 cannot arrive.
            ack_all(self.client, [msg.mid for msg in batch.messages if msg.qos == 1])
            if len(batch.confirms):  # stored before confirmed: _store returned, so it is durable
                self._confirm(batch.confirms)
            if self.live is not None:  # stored and acked: on to live clients (never raises)
                self.live.publish(batch.readings, self._refused)
        last_seen.flush()

    def _write_seen(self, seen: Mapping[tuple[str, str], int]) -> None:
        try:
            self.registry.seen(seen)
        except Exception:  # last-seen times are a convenience, readings are not
            log.exception("could not update the device registry")

    def _confirm(self, confirms: Confirmations) -> None:
        """Tell each device that asked which of its batches this write stored. With this
        worker's own client (any worker of a shared subscription confirms what it stored)."""
        for topic, payload in confirms.messages():
            self.client.publish(topic, payload, qos=ACK_QOS)
            self.metrics.confirmations.inc()

    def _reject(self, exc: BadReading, topic: str) -> None:
        self.metrics.rejected.labels(exc.reason).inc()
        if exc.reason not in self._logged_reasons:  # once per reason, then only counted
            self._logged_reasons.add(exc.reason)
            log.warning("rejected (%s) on %r: %s [further %r rejections are only counted "
                        "in /metrics]", exc.reason, topic, exc, exc.reason,
                        extra={"rate_key": exc.reason})

    def _decode(self, msg: _Message, seen: dict[tuple[str, str], int],
                kinds: Counter[str], confirms: Confirmations) -> list[Reading]:
        """Readings of a ``readings`` message; status and meta go to the registry; a batch
        that asks for confirmation is noted in ``confirms`` (refused readings included: a
        refusal is final, resending cannot change it)."""
        topic = self._topics.get(msg.topic)
        if topic is None:
            try:
                topic = Topic.parse(msg.topic)
            except BadReading as exc:
                kinds["invalid"] += 1
                self._reject(exc, msg.topic)
                return []
            if len(self._topics) < MAX_CACHED_TOPICS:
                self._topics[msg.topic] = topic
        kinds[topic.kind.value] += 1
        try:
            if topic.kind is Kind.READINGS:
                batch = decode_batch(topic, msg.payload, max_future_s=self.cfg.max_future_s,
                                     max_age_s=self.cfg.max_age_s)
                for rejected in batch.rejected:
                    self._reject(rejected, msg.topic)
                if batch.readings:
                    seen[(topic.site, topic.device)] = msg.received_ms
                if batch.confirm:
                    confirms.add(topic.site, topic.device, batch.first, batch.seq)
                return batch.readings
            if topic.kind is Kind.STATUS and msg.payload:
                self.registry.set_status(topic.site, topic.device, decode_status(msg.payload),
                                         msg.received_ms)
            elif topic.kind is Kind.META:
                meta = decode_meta(msg.payload, topic) if msg.payload else None
                self.registry.set_meta(topic.site, topic.device, meta)
        except BadReading as exc:
            self._reject(exc, msg.topic)
        return []

    def _write(self, readings: list[Reading]) -> int | None:
        """Store a batch, dead-letter what the back-end refuses for good, and mark late
        readings for the rollups: all durable before any ack."""
        stored, refused = write_or_refuse(self.storage, readings)
        self._refused = [reading for reading, _reason in refused]
        if refused:
            if self.dead_letters is None:
                raise StorageUnavailable(f"{len(refused)} readings refused "
                                         f"({refused[0][1]}) and no dead-letter store")
            self.dead_letters.add(refused)
            for _reading, reason in refused:
                self.metrics.dead_letters.labels(_reason_label(reason)).inc()
            log.warning("storage refused %d readings for good (%s); kept as dead letters "
                        "(fabcity hub dead-letters list)", len(refused), refused[0][1])
        if self.rollups is not None:
            self.rollups.mark_late(readings)
        if stored is None:  # the back-end cannot tell replays from new readings
            self.metrics.readings_stored.inc(len(readings) - len(refused))
        else:
            self.metrics.readings_stored.inc(stored)
            self.metrics.readings_duplicate.inc(len(readings) - len(refused) - stored)
        return stored

    def _store(self, readings: list[Reading]) -> bool:
        """Write until storage takes the batch; False if stopped or given up before it did."""
        if not readings:
            return True
        delay_s = RETRY_MIN_S
        unexpected = 0
        while self.failed is None:
            started = time.perf_counter()
            try:
                self._write(readings)
            except StorageUnavailable as exc:
                self._unavailable(exc, len(readings), delay_s)
            except Exception as exc:  # a bug, ours or the back-end's: a few tries, then exit
                unexpected += 1
                self.metrics.write_errors.inc()
                if unexpected >= MAX_UNEXPECTED_FAILURES:
                    self._give_up(exc)
                    return False
                log.exception("unexpected storage error (%d of %d before the hub gives up); "
                              "retrying %d readings in %.1f s", unexpected,
                              MAX_UNEXPECTED_FAILURES, len(readings), delay_s)
            else:
                self.metrics.write_latency.observe(time.perf_counter() - started)
                if self.storage_problem is not None:
                    log.info("storage is back after %.0f s; writing again",
                             (now_ms() - self.storage_problem[1]) / 1000)
                    self.storage_problem = None
                    self.metrics.storage_available.set(1)
                return True
            if self._stop.wait(delay_s):
                return False
            delay_s = min(delay_s * 2, RETRY_MAX_S)
        return False

    def _unavailable(self, exc: StorageUnavailable, count: int, delay_s: float) -> None:
        """Note the outage; log it when it starts or its cause changes, not every retry."""
        self.metrics.write_errors.inc()
        self.metrics.storage_available.set(0)
        cause = str(exc)
        if self.storage_problem is None or self.storage_problem[0] != cause:
            log.error("storage unavailable: %s; holding %d readings unacked (the broker keeps "
                      "the rest), retrying with backoff up to %.0f s", cause, count,
                      RETRY_MAX_S)
            since = self.storage_problem[1] if self.storage_problem else now_ms()
            self.storage_problem = (cause, since)

    def _give_up(self, exc: BaseException) -> None:
        """Stop acking for good and let the hub exit (systemd restarts it)."""
        self.failed = exc
        self.metrics.storage_available.set(0)
        log.critical("storage keeps failing with an unexpected error (%s: %s) after %d tries; "
                     "ingest stops and acks nothing more (the broker keeps the messages); the "
                     "hub exits so its supervisor can restart it", type(exc).__name__, exc,
                     MAX_UNEXPECTED_FAILURES, exc_info=exc)
        self._stop.set()
        if self.on_fatal is not None:
            self.on_fatal(exc)


def _reason_label(reason: str) -> str:
    """A short, bounded Prometheus label from a back-end's refusal text."""
    lowered = reason.lower()
    for key in ("retention", "field type conflict", "max-values-per-tag", "too large",
                "timestamp", "parse"):
        if key in lowered:
            return key.replace(" ", "_").replace("-", "_")
    return "other"
