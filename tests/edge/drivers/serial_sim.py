"""Simulated serial sensors on a pty pair, writing datasheet frames from a thread.

The driver opens ``path``, a symlink to the pty's slave (as ``/dev/serial/by-id/...`` is
to ``/dev/ttyUSB0``). ``unplug`` closes the pty and removes the link, ``plug`` makes a new
pty and relinks, like a USB adapter pulled and pushed back.
"""

import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from edge.drivers import mhz19, pms5003, sds011

#: Splits a response into chunks written with a pause between them.
Shaper = Callable[[bytes], list[bytes]]

CHUNK_PAUSE_S = 0.03


class Protocol:
    """A device's side of a serial protocol: answers commands, streams frames."""

    COMMAND_BYTES = 0
    COMMAND_HEADER = b""

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self._pending = bytearray()
        self.shaper: Shaper | None = None  # applied once, to the next response
        self.silent = False
        self.streamed = 0  # frames sent unsolicited (active reporting)

    def receive(self, data: bytes) -> bytes:
        """Bytes from the host; returns the bytes to send back."""
        self._pending += data
        out = b""
        while True:
            start = self._pending.find(self.COMMAND_HEADER)
            if start < 0 or len(self._pending) - start < self.COMMAND_BYTES:
                break
            cmd = bytes(self._pending[start : start + self.COMMAND_BYTES])
            del self._pending[: start + self.COMMAND_BYTES]
            self.commands.append(cmd)
            out += self.answer(cmd)
        return out

    def answer(self, cmd: bytes) -> bytes:
        return b""

    def stream(self, now: float) -> bytes:
        """Unsolicited frames due at ``now`` (active reporting)."""
        return b""


class ReportingProtocol(Protocol):
    """A particulate sensor that reports a data frame every ``period_s`` in active mode."""

    def __init__(self) -> None:
        super().__init__()
        self.active = True  # power-on default
        self.working = True
        self.period_s = 0.1
        self._next_s = 0.0

    def data_frame(self) -> bytes:
        raise NotImplementedError

    def stream(self, now: float) -> bytes:
        if self.active and self.working and now >= self._next_s:
            self._next_s = now + self.period_s
            self.streamed += 1
            return self.data_frame()
        return b""


class Sds011Sim(ReportingProtocol):
    COMMAND_BYTES = 19
    COMMAND_HEADER = b"\xaa\xb4"

    def __init__(self, pm2_5: float = 12.3, pm10: float = 45.6) -> None:
        super().__init__()
        self.pm2_5, self.pm10 = pm2_5, pm10

    def data_frame(self) -> bytes:
        data = (round(self.pm2_5 * 10).to_bytes(2, "little")
                + round(self.pm10 * 10).to_bytes(2, "little") + b"\x12\x34")
        return b"\xaa\xc0" + data + bytes([sum(data) & 0xFF, 0xAB])

    def reply(self, *data: int) -> bytes:
        body = bytes(data).ljust(4, b"\x00") + b"\x12\x34"
        return b"\xaa\xc5" + body + bytes([sum(body) & 0xFF, 0xAB])

    def answer(self, cmd: bytes) -> bytes:
        if cmd[17] != sum(cmd[2:17]) & 0xFF or cmd[18] != 0xAB:
            return b""
        op, set_, value = cmd[2], cmd[3], cmd[4]
        if op == sds011.CMD_SLEEP_WORK:
            if set_:
                self.working = bool(value)
            return self.reply(op, set_, int(self.working))
        if not self.working:
            return b""  # asleep: only the work command is heard
        if op == sds011.CMD_REPORTING_MODE:
            if set_:
                self.active = value == sds011.MODE_ACTIVE
            return self.reply(op, set_, int(not self.active))
        if op == sds011.CMD_QUERY_DATA:
            return self.data_frame()
        return b""



class Pms5003Sim(ReportingProtocol):
    COMMAND_BYTES = 7
    COMMAND_HEADER = pms5003.HEADER

    def __init__(self) -> None:
        super().__init__()
        # CF=1 PM1/2.5/10, atmospheric PM1/2.5/10, counts >0.3..>10 um, reserved
        self.words = [11, 22, 33, 5, 8, 13, 1500, 420, 90, 12, 3, 1, 0x9100]

    def data_frame(self) -> bytes:
        body = pms5003.HEADER + (28).to_bytes(2, "big")
        body += b"".join(w.to_bytes(2, "big") for w in self.words)
        return body + (sum(body) & 0xFFFF).to_bytes(2, "big")

    def reply(self, cmd: int, data: int) -> bytes:
        body = pms5003.HEADER + b"\x00\x04" + bytes([cmd, data])
        return body + (sum(body) & 0xFFFF).to_bytes(2, "big")

    def answer(self, cmd: bytes) -> bytes:
        if sum(cmd[:5]) & 0xFFFF != int.from_bytes(cmd[5:7], "big"):
            return b""
        op, value = cmd[2], cmd[4]
        if op == pms5003.CMD_SLEEP:
            self.working = bool(value)
            return self.reply(op, value) if not value else b""
        if not self.working:
            return b""
        if op == pms5003.CMD_MODE:
            self.active = value == pms5003.MODE_ACTIVE
            return self.reply(op, value)
        if op == pms5003.CMD_READ and not self.active:
            return self.data_frame()
        return b""



class Mhz19Sim(Protocol):
    COMMAND_BYTES = 9
    COMMAND_HEADER = b"\xff\x01"

    def __init__(self, co2_ppm: int = 612) -> None:
        super().__init__()
        self.co2_ppm = co2_ppm
        self.abc: bool | None = None
        self.range_ppm: int | None = None

    def frame(self, op: int, data: bytes) -> bytes:
        body = bytes([0xFF, op]) + data.ljust(6, b"\x00")
        return body + bytes([mhz19.checksum(body + b"\x00")])

    def answer(self, cmd: bytes) -> bytes:
        if mhz19.checksum(cmd) != cmd[8]:
            return b""
        op = cmd[2]
        if op == mhz19.CMD_READ:
            return self.frame(op, self.co2_ppm.to_bytes(2, "big") + bytes([40 + 23, 0, 0, 0]))
        if op == mhz19.CMD_ABC:
            self.abc = cmd[3] == mhz19.ABC_ON
            return self.frame(op, b"\x01")
        if op == mhz19.CMD_RANGE:
            self.range_ppm = int.from_bytes(cmd[6:8], "big")
            return self.frame(op, b"\x01")
        return b""


class PtyDevice:
    """A device behind a pty, reachable at ``path`` while plugged in."""

    def __init__(self, path: Path, protocol: Protocol) -> None:
        self.path = path
        self.protocol = protocol
        self._master = self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def plug(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path.symlink_to(os.ttyname(self._slave))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        os.close(self._master)
        os.close(self._slave)
        self.path.unlink()

    def write(self, data: bytes) -> None:
        """Raw bytes to the host, as the device would send them."""
        with self._lock:
            os.write(self._master, data)

    def _send(self, data: bytes) -> None:
        if not data:
            return
        shaper, self.protocol.shaper = self.protocol.shaper, None
        chunks = shaper(data) if shaper is not None else [data]
        for index, chunk in enumerate(chunks):
            if index:
                time.sleep(CHUNK_PAUSE_S)
            self.write(chunk)

    def _run(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._master], [], [], 0.005)
            if readable:
                try:
                    data = os.read(self._master, 1024)
                except OSError:
                    continue
                answer = self.protocol.receive(data)
                if not self.protocol.silent:
                    self._send(answer)
            if not self.protocol.silent:
                self._send(self.protocol.stream(time.monotonic()))


def wait_until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
