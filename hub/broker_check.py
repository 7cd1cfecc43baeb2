"""Does the broker keep the hub's data while the hub is away? Checked once, at start.

Mosquitto's defaults lose readings: an offline persistent session is queued at most 1,000
messages (``max_queued_messages``), an MQTT 3.1.1 client is handed 20 unacked messages at a
time (``max_inflight_messages``), and without ``persistence true`` a broker restart forgets
every session. The broker does not publish its configuration, so the hub measures what it can:

- queue room: a probe client subscribes with a persistent session on its own topic (under
  ``fabcity/_probe/``, outside ``fabcity/v1/`` that ingest reads), goes offline, a second
  client publishes :data:`PROBE_MESSAGES` small QoS 1 messages (more than Mosquitto's default
  queue), then the probe client comes back and counts what the broker kept for it;
- in-flight window: the Receive Maximum of the broker's MQTT v5 CONNACK (Mosquitto sends its
  ``max_inflight_messages`` there);
- persistence: not visible to a client. The result names the broker (``$SYS/broker/version``)
  and reminds the operator; later, when ingest's link comes back, :class:`BrokerProbe` tells
  whether the broker restarted meanwhile (``$SYS/broker/uptime``) and kept the hub's session.

Nothing here touches readings: the probe's sessions are removed when it ends.
"""

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fabcity.mqtt import BrokerAddress, apply_credentials
from hub.config import HubMqttConfig

__all__ = ["PROBE_MESSAGES", "PROBE_PREFIX", "BrokerCheck", "BrokerProbe", "run_probe"]

log = logging.getLogger(__name__)

PROBE_PREFIX = "fabcity/_probe"
#: More than Mosquitto's default ``max_queued_messages`` (1,000).
PROBE_MESSAGES = 1_100
#: Below this many unacked messages per client, a burst backs up at the broker.
MIN_INFLIGHT = 1_000
PROBE_SESSION_EXPIRY_S = 300  # the probe's session outlives its pause, not the hub
STEP_TIMEOUT_S = 30.0  # one connect, one publish burst, one drain
DRAIN_IDLE_S = 2.0  # no new message for this long: the broker has sent all it kept
SYS_WAIT_S = 2.0  # $SYS topics are retained: they arrive at once or not at all
WATCH_INTERVAL_S = 1.0

QUEUE_LINES = ("max_queued_messages 0", "max_queued_bytes 0")
INFLIGHT_LINE = f"max_inflight_messages {MIN_INFLIGHT}"
PERSIST_LINES = ("persistence true", "persistence_location /var/lib/mosquitto/")
PERSIST_HINT = ("persistence cannot be seen from a client: make sure the broker has "
                "`persistence true` with a writable `persistence_location`, or a broker "
                "restart loses the hub's queued readings")

Status = Literal["pending", "ok", "warning", "failed"]


@dataclass(frozen=True)
class BrokerCheck:
    """What the probe found; ``config_lines`` are what to add to mosquitto.conf."""

    status: Status = "pending"
    broker: str | None = None  # $SYS/broker/version
    sent: int = 0
    queued: int | None = None  # of ``sent``, kept for the offline probe session
    receive_maximum: int | None = None  # the broker's, from its MQTT v5 CONNACK
    session_kept: bool | None = None  # the probe's session was there when it came back
    #: ``kept`` / ``lost`` once ingest reconnected after a broker restart, else None.
    persistence: Literal["kept", "lost"] | None = None
    problems: tuple[str, ...] = ()
    config_lines: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class _Probe:
    """One paho client driven step by step from the probe thread."""

    def __init__(self, address: BrokerAddress, mqtt: HubMqttConfig, client_id: str,
                 v5: bool) -> None:
        self.address, self.mqtt, self.v5 = address, mqtt, v5
        self.client_id = client_id
        self.connack = threading.Event()
        self.connack_reason: Any = None
        self.session_present = False
        self.receive_maximum: int | None = None
        self.subacks: dict[int, list[Any]] = {}
        self.subacked = threading.Condition()
        self.messages: dict[str, list[bytes]] = {}
        self.last_message = time.monotonic()
        self.acked = 0
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.client: paho.Client | None = None

    def connect(self, clean: bool, expiry_s: int, inflight: int = 20) -> None:
        """Connect and wait for the CONNACK; raise with the broker's reason on refusal."""
        if self.v5:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                 protocol=paho.MQTTv5)
        else:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                 protocol=paho.MQTTv311, clean_session=clean)
        apply_credentials(client, self.address, self.mqtt.username, self.mqtt.password,
                          self.mqtt.ca_file)
        client.max_inflight_messages_set(inflight)  # paho ignores the broker's own limit
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client
        self.connack.clear()
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = expiry_s
            props.ReceiveMaximum = 65_535
            client.connect(self.address.host, self.address.port, 30, clean_start=clean,
                           properties=props)
        else:
            client.connect(self.address.host, self.address.port, 30)
        client.loop_start()
        if not self.connack.wait(STEP_TIMEOUT_S):
            raise TimeoutError(f"no CONNACK within {STEP_TIMEOUT_S:g} s")
        if self.connack_reason is not None and self.connack_reason.is_failure:
            raise ConnectionError(f"the broker refused the probe client: {self.connack_reason}")

    def subscribe(self, topic: str) -> bool:
        """Subscribe at QoS 1; False if the broker refused (its ACL, typically)."""
        assert self.client is not None
        rc, mid = self.client.subscribe(topic, 1)
        if mid is None:
            raise ConnectionError(f"could not send SUBSCRIBE (paho error {rc})")
        with self.subacked:
            if not self.subacked.wait_for(lambda: mid in self.subacks, STEP_TIMEOUT_S):
                raise TimeoutError(f"no SUBACK for {topic!r} within {STEP_TIMEOUT_S:g} s")
            codes = self.subacks[mid]
        return not any(code.is_failure for code in codes)

    def disconnect(self, end_session: bool = False) -> None:
        if self.client is None:
            return
        props = None
        if end_session and self.v5:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()
        self.client = None

    def received(self, topic: str) -> list[bytes]:
        with self.lock:
            return list(self.messages.get(topic, []))

    # paho callbacks, on the client's network thread
    def _on_connect(self, _c: paho.Client, _u: Any, flags: Any, reason: Any,
                    props: Any = None) -> None:
        self.connack_reason = reason
        self.session_present = bool(getattr(flags, "session_present", False))
        maximum = getattr(props, "ReceiveMaximum", None) if props is not None else None
        self.receive_maximum = int(maximum) if maximum is not None else None
        self.connack.set()

    def _on_subscribe(self, _c: paho.Client, _u: Any, mid: int, codes: list[Any],
                      _props: Any = None) -> None:
        with self.subacked:
            self.subacks[mid] = list(codes)
            self.subacked.notify_all()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.setdefault(msg.topic, []).append(bytes(msg.payload))
            self.last_message = time.monotonic()

    def _on_publish(self, _c: paho.Client, _u: Any, _mid: int, reason: Any,
                    _props: Any = None) -> None:
        with self.lock:
            self.acked += 1
            if reason is not None and getattr(reason, "is_failure", False):
                self.refused.append(str(reason))


def _read_sys(probe: _Probe, topic: str) -> str | None:
    """A retained ``$SYS`` value, or None if the broker has none (or the ACL hides it)."""
    try:
        if not probe.subscribe(topic):
            return None
    except TimeoutError:
        return None
    deadline = time.monotonic() + SYS_WAIT_S
    while time.monotonic() < deadline:
        values = probe.received(topic)
        if values:
            return values[-1].decode("utf-8", "replace").strip()
        time.sleep(0.02)
    return None


def _publish_burst(address: BrokerAddress, mqtt: HubMqttConfig, v5: bool, topic: str,
                   count: int, inflight: int) -> tuple[int, list[str]]:
    """Publish ``count`` QoS 1 messages, at most ``inflight`` unacked (the broker's Receive
    Maximum: a v5 broker disconnects a client that sends more); how many the broker acked,
    and its refusals."""
    pub = _Probe(address, mqtt, f"{mqtt.client_id}-probe-pub"[:64], v5)
    pub.connect(clean=True, expiry_s=0, inflight=inflight)
    assert pub.client is not None
    try:
        for index in range(count):
            pub.client.publish(topic, f"{index}".encode(), qos=1)
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while pub.acked < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return pub.acked, pub.refused
    finally:
        pub.disconnect()


def run_probe(address: BrokerAddress, mqtt: HubMqttConfig, v5: bool,
              count: int = PROBE_MESSAGES) -> BrokerCheck:
    """Measure queue room and in-flight window on a topic of its own; raises if the broker
    cannot be reached or refuses the probe."""
    topic = f"{PROBE_PREFIX}/{mqtt.client_id}/{secrets.token_hex(4)}"
    sub = _Probe(address, mqtt, f"{mqtt.client_id}-probe"[:64], v5)
    # clean start wipes what an interrupted earlier probe left; then a persistent session
    sub.connect(clean=True, expiry_s=PROBE_SESSION_EXPIRY_S)
    receive_maximum = sub.receive_maximum
    broker = _read_sys(sub, "$SYS/broker/version")
    if not sub.subscribe(topic):
        sub.disconnect(end_session=True)
        return BrokerCheck(
            status="failed", broker=broker, receive_maximum=receive_maximum,
            problems=(f"the broker refused the probe's subscription to {PROBE_PREFIX}/# "
                      "(its ACL?): the hub's account needs `topic readwrite "
                      f"{PROBE_PREFIX}/#` (fabcity hub devices renders it)",))
    if not v5:  # 3.1.1: the session persists only if the connection did not ask to clean
        sub.disconnect()
        sub.connect(clean=False, expiry_s=0)
        sub.subscribe(topic)
    sub.disconnect()
    inflight = min(receive_maximum or MIN_INFLIGHT, MIN_INFLIGHT)
    acked, refused = _publish_burst(address, mqtt, v5, topic, count, inflight)
    sub.connect(clean=False, expiry_s=PROBE_SESSION_EXPIRY_S)
    try:
        session_kept = sub.session_present
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            if len(sub.received(topic)) >= count:
                break
            if time.monotonic() - sub.last_message > DRAIN_IDLE_S:
                break
            time.sleep(0.05)
        queued = len(set(sub.received(topic)))
    finally:
        sub.disconnect(end_session=True)
        if not v5:  # 3.1.1: a clean connection ends the stored session
            sub.connect(clean=True, expiry_s=0)
            sub.disconnect()
    return _judge(BrokerCheck(broker=broker, sent=count, queued=queued,
                              receive_maximum=receive_maximum, session_kept=session_kept),
                  acked, refused)


def _judge(check: BrokerCheck, acked: int, refused: list[str]) -> BrokerCheck:
    """Turn measurements into a status, problems and the lines that fix them."""
    problems: list[str] = []
    lines: list[str] = []
    if refused:
        return replace(check, status="failed", problems=(
            f"the broker refused {len(refused)} of the probe's publishes ({refused[0]}): the "
            f"hub's account needs `topic readwrite {PROBE_PREFIX}/#` in the ACL",))
    if acked < check.sent:
        problems.append(f"the broker acknowledged only {acked} of {check.sent} probe messages "
                        f"within {STEP_TIMEOUT_S:g} s")
    if check.session_kept is False:
        problems.append("the broker did not keep the probe's persistent session while it was "
                        "offline (it would not keep the hub's either): check "
                        "`persistent_client_expiration` and that the broker honours MQTT v5 "
                        "session expiry")
        lines += ["persistent_client_expiration 14d"]
    elif check.queued is not None and check.queued < check.sent:
        problems.append(f"the broker queued only {check.queued} of {check.sent} messages for an "
                        "offline client: add `max_queued_messages 0` (or a large number) and "
                        "`max_queued_bytes 0`, or readings are dropped whenever the hub is "
                        "down or behind")
        lines += QUEUE_LINES
    if check.receive_maximum is not None and check.receive_maximum < MIN_INFLIGHT:
        problems.append(f"the broker takes at most {check.receive_maximum} unacknowledged "
                        "messages per client (`max_inflight_messages`): an MQTT 3.1.1 hub "
                        f"gets no more at a time and stalls; add `{INFLIGHT_LINE}`")
        lines.append(INFLIGHT_LINE)
    notes = [PERSIST_HINT]
    if check.broker is None:
        notes.append("the broker publishes no $SYS/broker/version: not Mosquitto, or $SYS "
                     "is hidden; its queue and persistence settings are its own")
    if problems:
        lines += PERSIST_LINES  # not measured, but never wrong to have
    return replace(check, status="warning" if problems else "ok", problems=tuple(problems),
                   config_lines=tuple(dict.fromkeys(lines)), notes=tuple(notes))


def log_result(check: BrokerCheck) -> None:
    """One line: INFO when the broker is fine, WARNING with the config lines when not."""
    name = check.broker or "an unnamed broker"
    inflight = check.receive_maximum if check.receive_maximum is not None else "not announced"
    if check.status == "ok":
        log.info("broker check (%s): kept %s of %s messages for an offline session; "
                 "receive maximum %s; %s", name, check.queued, check.sent, inflight,
                 PERSIST_HINT)
    elif check.status == "warning":
        log.warning("broker check (%s): %s. Add to mosquitto.conf (docs/operations.md, "
                    "\"Broker check\"):\n    %s", name, "; ".join(check.problems),
                    "\n    ".join(check.config_lines))
    else:
        log.warning("broker check could not run: %s", "; ".join(check.problems))


@dataclass
class BrokerProbe:
    """Runs :func:`run_probe` once ingest is connected, then watches ingest's reconnects
    for a broker restart that kept (or lost) the hub's session."""

    address: BrokerAddress
    mqtt: HubMqttConfig
    v5: bool
    #: ingest's link: (connected, number of CONNACKs so far, last session_present)
    link: Callable[[], tuple[bool, int, bool | None]]
    result: BrokerCheck = field(default_factory=BrokerCheck)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="broker-check", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STEP_TIMEOUT_S)

    def _run(self) -> None:
        while not self.link()[0]:
            if self._stop.wait(0.2):
                return
        try:
            self.result = run_probe(self.address, self.mqtt, self.v5)
        except Exception as exc:  # a probe must never take the hub down
            self.result = BrokerCheck(status="failed", problems=(
                f"{type(exc).__name__}: {exc}",))
        log_result(self.result)
        self._watch()

    def _watch(self) -> None:
        """On each ingest reconnect: did the broker restart, and was the session kept?"""
        _up, seen, _present = self.link()
        last_up = time.monotonic()  # the link was last seen up, unchanged, then
        while not self._stop.wait(WATCH_INTERVAL_S):
            connected, connects, present = self.link()
            if not connected or connects == seen:
                if connected:
                    last_up = time.monotonic()
                continue
            seen = connects
            if present:
                uptime = self._broker_uptime_s()
                # the broker started after the link was last seen up: it restarted meanwhile
                if uptime is None or time.monotonic() - uptime < last_up - WATCH_INTERVAL_S:
                    last_up = time.monotonic()
                    continue
                self.result = replace(self.result, persistence="kept")
                log.info("the broker restarted (up %.0f s) and kept the hub's session: its "
                         "persistence works", uptime)
            else:
                self.result = replace(
                    self.result, persistence="lost", status="warning",
                    problems=(*self.result.problems, "the broker lost the hub's session "
                              "while the link was down (restarted without persistence?)"),
                    config_lines=tuple(dict.fromkeys((*self.result.config_lines,
                                                      *PERSIST_LINES))))
                log.warning("the broker lost the hub's session (restarted without "
                            "persistence?): readings published meanwhile are gone. Add to "
                            "mosquitto.conf:\n    %s", "\n    ".join(PERSIST_LINES))
            last_up = time.monotonic()

    def _broker_uptime_s(self) -> float | None:
        probe = _Probe(self.address, self.mqtt, f"{self.mqtt.client_id}-probe"[:64], self.v5)
        try:
            probe.connect(clean=True, expiry_s=0)
            text = _read_sys(probe, "$SYS/broker/uptime")
        except Exception:
            return None
        finally:
            probe.disconnect()
        try:
            return float(text.split()[0]) if text else None
        except ValueError:
            return None
