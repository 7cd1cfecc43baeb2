"""A conversation with one device on a serial port.

:class:`DeviceSession` opens the port by name, asks for a HELLO (the handshake), checks the
protocol version, maps the device clock to UTC, counts lost and damaged frames, matches
command answers to commands, and reopens the port after an unplug. A reader thread does the
work; everything it sees is handed to ``on_event`` as a :data:`LinkEvent`.
"""

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import serial

from fabcity.reading import now_ms
from firmware_bridge.clock import DeviceClock
from firmware_bridge.errors import (
    CommandRejected,
    CommandTimeout,
    DeviceUnavailable,
    ProtocolError,
)
from firmware_bridge.frame import SEQ_MODULUS, Frame, FrameDecoder, Rejected, encode_frame
from firmware_bridge.messages import (
    Ack,
    DeviceError,
    Hello,
    Message,
    check_identify_seconds,
    parse_message,
)
from firmware_bridge.sequence import SequenceTracker
from firmware_bridge.stats import LinkStats

__all__ = [
    "DEFAULT_BAUDRATE",
    "Connected",
    "DeviceSession",
    "Disconnected",
    "LinkEvent",
    "Received",
    "Refused",
]

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 115_200
DEFAULT_HANDSHAKE_TIMEOUT_S = 3.0
DEFAULT_RECONNECT_INTERVAL_S = 1.0
DEFAULT_COMMAND_TIMEOUT_S = 1.0
#: How often an unanswered HELLO request is repeated during a handshake.
HELLO_RETRY_S = 0.5
READ_TIMEOUT_S = 0.05
WRITE_TIMEOUT_S = 1.0
READ_CHUNK_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Connected:
    """A handshake succeeded (at start or after a reconnect or a device restart)."""

    hello: Hello


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The port went away; the session keeps trying to reopen it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The device's HELLO was refused (unknown protocol major version, invalid channels)."""

    error: ProtocolError


@dataclass(frozen=True, slots=True)
class Received:
    """A valid frame; ``message`` is ``None`` for a kind this host does not know.

    ``ts_ms`` is the device uptime mapped to UTC; ``hello`` is the HELLO in force (``None``
    while a handshake is pending, when readings cannot be attributed to channels yet).
    """

    frame: Frame
    message: Message | None
    received_ms: int
    ts_ms: int | None
    hello: Hello | None


LinkEvent = Connected | Disconnected | Refused | Received | Rejected


class _Pending:
    """A command waiting for its answer."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: Message | None = None


class DeviceSession:
    """Talk to the device on ``port`` (a path such as ``/dev/ttyACM0`` or a pyserial URL)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        reconnect_interval_s: float = DEFAULT_RECONNECT_INTERVAL_S,
        on_event: Callable[[LinkEvent], None] | None = None,
        after_handshake: Sequence[tuple[str, Mapping[str, str | int]]] = (),
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.handshake_timeout_s = handshake_timeout_s
        self.reconnect_interval_s = reconnect_interval_s
        self.on_event = on_event
        self.after_handshake = list(after_handshake)
        self._clock_now = clock
        self._serial: serial.SerialBase | None = None
        self._decoder = FrameDecoder()
        self._sequence = SequenceTracker()
        self._device_clock = DeviceClock()
        self._counts = {"bad_messages": 0, "unknown_kinds": 0, "refused_hellos": 0, "reboots": 0,
                        "reconnects": 0}
        self._seen_frames = False
        self._next_seq = 0
        self._lock = threading.Lock()  # guards writes, _pending and the state below
        self._changed = threading.Condition(self._lock)
        self._pending: dict[int, _Pending] = {}
        self._hello: Hello | None = None
        self._refusal: ProtocolError | None = None
        self._hello_requested_at = 0.0
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- public ---------------------------------------------------------------------------

    @property
    def hello(self) -> Hello | None:
        """The HELLO in force, or ``None`` while a handshake is pending."""
        return self._hello

    @property
    def connected(self) -> bool:
        return self._serial is not None

    @property
    def stats(self) -> LinkStats:
        return LinkStats.collect(self._decoder.stats, self._sequence, **self._counts)

    def open(self, *, wait_for_hello: bool = True) -> Hello | None:
        """Open the port and start the handshake; wait for the HELLO unless told not to.

        Raises :class:`DeviceUnavailable` (no port, no answer) or
        :class:`~firmware_bridge.errors.UnsupportedProtocol`.
        """
        if self._thread is not None:
            raise RuntimeError("session already open")
        self._serial = self._open_port()
        self._closing.clear()
        self._thread = threading.Thread(target=self._run, name=f"bridge {self.port}", daemon=True)
        self._thread.start()
        if not wait_for_hello:
            return None
        try:
            return self.wait_for_hello(self.handshake_timeout_s)
        except Exception:
            self.close()
            raise

    def wait_for_hello(self, timeout_s: float) -> Hello:
        """Block until a handshake succeeds; raise if it is refused or times out."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._hello is None and self._refusal is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeviceUnavailable(
                        f"{self.port}: no HELLO from the device within {timeout_s:g} s: is it "
                        f"running fabcity firmware, at {self.baudrate} baud?"
                    )
                self._changed.wait(remaining)
            if self._refusal is not None:
                raise self._refusal
            assert self._hello is not None
            return self._hello

    def command(
        self,
        name: str,
        fields: Mapping[str, str | int] | None = None,
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        retries: int = 1,
    ) -> Ack | Hello:
        """Send a command and wait for its answer (an ACK, or a HELLO for ``HELLO``).

        Raises :class:`CommandRejected` if the device answers ERR, :class:`CommandTimeout`
        after ``1 + retries`` unanswered attempts, :class:`ProtocolError` before sending an
        ``IDENTIFY`` whose ``s`` is out of range (``MIN_IDENTIFY_S..MAX_IDENTIFY_S``).
        """
        if name == "IDENTIFY" and fields and "s" in fields:
            fields = {**fields, "s": check_identify_seconds(fields["s"])}
        for _attempt in range(retries + 1):
            pending = _Pending()
            seq = self._send(name, fields or {}, pending)
            try:
                if not pending.done.wait(timeout_s):
                    continue
            finally:
                with self._lock:
                    self._pending.pop(seq, None)
            answer = pending.answer
            if isinstance(answer, DeviceError):
                raise CommandRejected(
                    answer.code, f"{self.port}: the device refused {name}: {answer.code}"
                )
            assert isinstance(answer, Ack | Hello)
            return answer
        raise CommandTimeout(
            f"{self.port}: no answer to {name} within {timeout_s:g} s "
            f"({retries + 1} attempt{'s' if retries else ''})"
        )

    def close(self) -> None:
        """Stop the reader thread and close the port; safe to call twice."""
        self._closing.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._drop_port()

    def __enter__(self) -> "DeviceSession":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- port -----------------------------------------------------------------------------

    def _open_port(self) -> serial.SerialBase:
        try:
            return serial.serial_for_url(
                self.port,
                baudrate=self.baudrate,
                timeout=READ_TIMEOUT_S,
                write_timeout=WRITE_TIMEOUT_S,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            if "://" not in self.port and not os.path.exists(self.port):
                reason = "no such device (is it plugged in? try ls /dev/serial/by-id/)"
            else:
                reason = str(exc)
            raise DeviceUnavailable(f"cannot open serial port {self.port}: {reason}") from None

    def _drop_port(self) -> None:
        with self._lock:
            port, self._serial = self._serial, None
            self._hello = None
            for pending in self._pending.values():
                pending.done.set()  # answer None: the caller retries or times out
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _send(self, kind: str, fields: Mapping[str, str | int], pending: _Pending | None) -> int:
        with self._lock:
            port = self._serial
            if port is None:
                raise DeviceUnavailable(f"{self.port}: not connected")
            seq = self._next_seq
            self._next_seq = (seq + 1) % SEQ_MODULUS
            if pending is not None:
                self._pending[seq] = pending
            try:
                port.write(encode_frame(seq, kind, fields))
            except (serial.SerialException, OSError) as exc:
                self._pending.pop(seq, None)
                raise DeviceUnavailable(f"{self.port}: write failed: {exc}") from None
        return seq

    # ---- reader thread --------------------------------------------------------------------

    def _emit(self, event: LinkEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a consumer's bug must not stop the link
                log.exception("%s: event handler failed on %s", self.port, type(event).__name__)

    def _run(self) -> None:
        self._request_hello()
        while not self._closing.is_set():
            port = self._serial
            if port is None:
                self._reconnect()
                continue
            try:
                data = port.read(max(1, min(port.in_waiting, READ_CHUNK_BYTES)))
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial on a port closed under it
                self._lost(str(exc) or type(exc).__name__)
                continue
            if data:
                self._handle_bytes(data)
            if self._hello is None and self._refusal is None and (
                time.monotonic() - self._hello_requested_at >= HELLO_RETRY_S
            ):
                self._request_hello()

    def _lost(self, reason: str) -> None:
        if self._closing.is_set():
            return
        log.debug("%s: disconnected (%s); reopening every %g s", self.port, reason,
                    self.reconnect_interval_s)
        self._drop_port()
        self._decoder.reset()
        self._emit(Disconnected(reason))

    def _reconnect(self) -> None:
        if self._closing.wait(self.reconnect_interval_s):
            return
        try:
            port = self._open_port()
        except DeviceUnavailable:
            return
        with self._lock:
            self._serial = port
            self._refusal = None
        self._counts["reconnects"] += 1
        log.debug("%s: reopened", self.port)
        self._request_hello()

    def _request_hello(self) -> None:
        self._hello_requested_at = time.monotonic()
        try:
            self._send("HELLO", {}, None)
        except DeviceUnavailable as exc:
            self._lost(str(exc))

    def _handle_bytes(self, data: bytes) -> None:
        received_ms = self._clock_now()
        for item in self._decoder.feed(data):
            if isinstance(item, Frame):
                self._handle_frame(item, received_ms)
            else:
                self._emit(item)

    def _handle_frame(self, frame: Frame, received_ms: int) -> None:
        try:
            message = parse_message(frame)
        except ProtocolError as exc:
            self._observe_sequence_only(frame)
            if frame.kind == "HELLO":
                self._refuse(exc)
            else:
                self._counts["bad_messages"] += 1
                self._emit(Rejected("bad_message", frame.raw, str(exc)))
            return
        if message is None:
            self._observe_sequence_only(frame)
            self._counts["unknown_kinds"] += 1
            self._emit(Received(frame, None, received_ms, None, self._hello))
            return
        self._note_restart(frame, message)
        self._sequence.observe(frame.seq)
        ts_ms = self._device_clock.observe(message.uptime_ms, received_ms)
        if isinstance(message, Hello):
            self._accept(message)
        if isinstance(message, Ack | DeviceError | Hello) and message.ref is not None:
            with self._lock:
                pending = self._pending.get(message.ref)
                if pending is not None:
                    pending.answer = message
                    pending.done.set()
        self._emit(Received(frame, message, received_ms, ts_ms, self._hello))

    def _observe_sequence_only(self, frame: Frame) -> None:
        """A valid frame whose content is unknown or refused still took a sequence number
        (spec section 3: +1 per frame of any kind), so skipping it would count a false loss."""
        if frame.kind == "HELLO" and frame.seq == 0 and "ref" not in frame.fields:
            self._sequence.reset()  # a boot HELLO, even a refused one, starts the numbering
        self._sequence.observe(frame.seq)

    def _note_restart(self, frame: Frame, message: Message) -> None:
        """A HELLO numbered 0, or a clock that went backwards, means the device restarted."""
        restarted = (isinstance(message, Hello) and frame.seq == 0 and message.ref is None) or (
            self._device_clock.is_backwards(message.uptime_ms)
        )
        if restarted:
            if self._seen_frames:
                self._counts["reboots"] += 1
                log.debug("%s: the device restarted", self.port)
            self._sequence.reset()
            self._device_clock.reset()
            with self._lock:
                self._hello = None  # handshake again: the device forgot its settings
        self._seen_frames = True

    def _accept(self, hello: Hello) -> None:
        first = self._hello is None
        with self._changed:
            self._hello = hello
            self._refusal = None
            self._changed.notify_all()
        if first:
            log.debug("%s: %s firmware %s, protocol %s, %d channels", self.port, hello.device,
                     hello.firmware, hello.protocol_text, len(hello.channels))
            for name, fields in self.after_handshake:
                try:
                    self._send(name, fields, None)
                except DeviceUnavailable as exc:
                    self._lost(str(exc))
                    return
            self._emit(Connected(hello))

    def _refuse(self, error: ProtocolError) -> None:
        log.debug("%s: %s", self.port, error)
        self._counts["refused_hellos"] += 1
        with self._changed:
            self._hello = None
            self._refusal = error
            self._changed.notify_all()
        self._emit(Refused(error))
