"""A simulated microcontroller speaking the protocol on a file descriptor (a pty master).

:class:`VirtualPort` gives it a serial port: a pty pair whose device end is reachable at a
fixed path, so a host can open it by name, lose it and find it again. The simulated device
behaves like the reference firmware: a HELLO at boot, readings every ``interval_ms``,
answers to HELLO, PING, INTERVAL and IDENTIFY. Tests and demos steer it: inject raw bytes,
skip sequence numbers, announce another protocol version, or pull the plug.
"""

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path

from firmware_bridge.errors import ProtocolError
from firmware_bridge.frame import SEQ_MODULUS, Frame, FrameDecoder
from firmware_bridge.messages import (
    DEFAULT_IDENTIFY_S,
    MAX_INTERVAL_MS,
    MIN_INTERVAL_MS,
    Channel,
    check_identify_seconds,
    encode_ack,
    encode_error,
    encode_hello,
    encode_readings,
    format_fixed,
)

__all__ = ["DEFAULT_CHANNELS", "SimulatedFirmware", "VirtualPort"]

DEFAULT_CHANNELS = (
    Channel("a0", "voltage", "V"),
    Channel("a1", "voltage", "V"),
    Channel("ds18b20", "temperature", "degC"),
)
POLL_S = 0.01


class SimulatedFirmware:
    """Reading ``n`` (from 1) reports ``a0 = n mV``, ``a1 = 3.3 V - n mV``, 21.5 °C + n/16."""

    def __init__(
        self,
        fd: int,
        *,
        device: str = "sim-py-1",
        firmware: str = "1.0.0-sim",
        protocol: str = "1.0",
        channels: Sequence[Channel] = DEFAULT_CHANNELS,
        interval_ms: int = 100,
        uptime_offset_ms: int = 0,
    ) -> None:
        self.fd = fd
        self.device = device
        self.firmware = firmware
        self.protocol = protocol
        self.channels = tuple(channels)
        self.interval_ms = interval_ms
        self.uptime_offset_ms = uptime_offset_ms
        self.readings_sent = 0
        self.commands: list[Frame] = []
        self._seq = 0
        self._boot = time.monotonic()
        self._decoder = FrameDecoder()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def uptime_ms(self) -> int:
        elapsed = int((time.monotonic() - self._boot) * 1000)
        return (elapsed + self.uptime_offset_ms) % (1 << 32)

    def start(self) -> "SimulatedFirmware":
        self._thread = threading.Thread(target=self._run, name="simulated firmware", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the firmware thread (the descriptor stays open)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def inject(self, data: bytes) -> None:
        """Write raw bytes (noise, a truncated frame) between frames."""
        self._write(data)

    def skip(self, count: int = 1) -> None:
        """Skip sequence numbers, as if frames were lost on the way."""
        with self._lock:
            self._seq = (self._seq + count) % SEQ_MODULUS

    def send(self, frame_of: Callable[[int, int], bytes]) -> None:
        """Send a frame built by ``frame_of(seq, uptime_ms)``."""
        with self._lock:
            seq = self._seq
            self._seq = (seq + 1) % SEQ_MODULUS
            self._write_locked(frame_of(seq, self.uptime_ms()))

    def _write(self, data: bytes) -> None:
        with self._lock:
            self._write_locked(data)

    def _write_locked(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # unplugged: bytes are lost, as on a real wire
            os.write(self.fd, data)

    def _hello(self, ref: int | None = None) -> None:
        self.send(lambda seq, t: encode_hello(
            seq, t, self.device, self.firmware, self.channels, interval_ms=self.interval_ms,
            ref=ref, protocol=self.protocol,
        ))

    def _readings(self) -> None:
        self.readings_sent += 1
        n = self.readings_sent
        values = {0: format_fixed(n, 3), 1: format_fixed(3300 - n, 3),
                  2: format_fixed((344 + n) * 625, 4)}
        values = {i: v for i, v in values.items() if i < len(self.channels)}
        self.send(lambda seq, t: encode_readings(seq, t, values))

    def _run(self) -> None:
        self._hello()
        next_at = time.monotonic() + self.interval_ms / 1000
        while not self._stop.is_set():
            timeout = max(0.0, min(POLL_S, next_at - time.monotonic()))
            try:
                ready, _, _ = select.select([self.fd], [], [], timeout)
                data = os.read(self.fd, 1024) if ready else b""
            except OSError:
                data = b""  # no reader on the other side yet
                time.sleep(POLL_S)
            for item in self._decoder.feed(data):
                if isinstance(item, Frame):
                    self._answer(item)
                else:
                    self._complain(item.reason)
            if time.monotonic() >= next_at:
                self._readings()
                next_at += self.interval_ms / 1000

    def _complain(self, reason: str) -> None:
        code = "bad_checksum" if reason == "bad_checksum" else "bad_frame"
        self.send(lambda seq, t: encode_error(seq, t, code))

    def _answer(self, command: Frame) -> None:
        self.commands.append(command)
        ref = command.seq
        if command.kind == "HELLO":
            self._hello(ref)
        elif command.kind == "PING":
            self.send(lambda seq, t: encode_ack(seq, t, ref))
        elif command.kind == "INTERVAL":
            text = command.fields.get("ms", "")
            if not text.isdigit() or not MIN_INTERVAL_MS <= int(text) <= MAX_INTERVAL_MS:
                self.send(lambda seq, t: encode_error(seq, t, "bad_arg", ref=ref))
                return
            self.interval_ms = int(text)
            self.send(lambda seq, t: encode_ack(seq, t, ref, {"ms": text}))
        elif command.kind == "IDENTIFY":
            try:
                seconds = check_identify_seconds(command.fields.get("s", DEFAULT_IDENTIFY_S))
            except ProtocolError:
                self.send(lambda seq, t: encode_error(seq, t, "bad_arg", ref=ref))
                return
            self.send(lambda seq, t: encode_ack(seq, t, ref, {"s": seconds}))
        else:
            self.send(lambda seq, t: encode_error(seq, t, "unknown_command", ref=ref))



class VirtualPort:
    """A pty pair with a stable name: ``path`` links to the device end, like /dev/serial/by-id.

    The simulator holds ``fd`` (the master). :meth:`unplug` closes the pair and removes the
    link; :meth:`plug` makes a new pair behind the same name.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self._device_fd = -1
        self.plug()

    def plug(self) -> int:
        """Create a fresh pty pair behind ``path``; return the simulator's descriptor."""
        self.fd, self._device_fd = os.openpty()
        tty.setraw(self._device_fd)  # no echo, no line editing before the host opens it
        tmp = self.path.with_name(self.path.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self._device_fd))
        tmp.replace(self.path)
        return self.fd

    def unplug(self) -> None:
        """Close both ends and remove the name: the host's reads fail, reopening fails."""
        self.path.unlink(missing_ok=True)
        for fd in (self.fd, self._device_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self._device_fd = -1

    def __enter__(self) -> "VirtualPort":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.unplug()
