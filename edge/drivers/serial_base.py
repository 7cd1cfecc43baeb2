"""Serial drivers: a port that reopens itself and a frame scanner that resynchronises.

``SerialDriver`` owns the pyserial port. Any I/O failure (USB unplugged, EIO, a silent
sensor) closes the port and raises :class:`DriverError`; the next read reopens the port and
reconfigures the device, so a sensor that comes back recovers without a restart.
``FrameScanner`` turns a byte stream with garbage, split and corrupted frames into checked
frames.
"""

import contextlib
import termios
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar

import serial
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeVar

from edge.config import SensorConfig
from edge.drivers.base import PolledDriver, Sample
from fabcity.errors import ConfigError, DriverError

__all__ = [
    "DutyCycleDriver",
    "DutyCycleOptions",
    "FrameScanner",
    "SerialDriver",
    "SerialOptions",
    "check_duty_cycle",
]

POLL_TIMEOUT_S = 0.05  # one blocking read on the port; deadlines are kept above it
MAX_BUFFER_BYTES = 4096  # a scanner never holds more than this
#: What a vanished port raises (pyserial, the OS, termios calls on a dead tty).
PORT_ERRORS = (OSError, serial.SerialException, termios.error)


class SerialOptions(BaseModel):
    """Options every serial driver takes."""

    model_config = ConfigDict(extra="forbid")

    port: str = Field(description="serial device, e.g. /dev/ttyUSB0 or /dev/serial0")
    timeout_s: float = Field(3.0, gt=0, le=120, description="wait this long for a frame")


class DutyCycleOptions(SerialOptions):
    """Options of a laser particle sensor that can sleep between reads."""

    duty_cycle: bool = Field(
        False, description="sleep the fan and laser between reads (interval_s > warmup_s)"
    )
    warmup_s: float = Field(30.0, ge=0, le=600, description="run this long before a reading")


def check_duty_cycle(config: SensorConfig, options: DutyCycleOptions) -> None:
    """A duty cycle needs time to warm up inside every interval."""
    if options.duty_cycle and config.interval_s <= options.warmup_s:
        raise ConfigError(
            f"sensor {config.name!r} ({config.driver}): interval_s: must exceed warmup_s "
            f"({options.warmup_s:g} s) when duty_cycle is on"
        )


class FrameScanner:
    """Cut checked frames out of a byte stream, skipping garbage and resynchronising.

    ``frame_length(buf)`` sees at least ``min_bytes`` bytes starting with ``header`` and
    returns the whole frame's length, or ``None`` if those bytes cannot start a frame.
    ``check(frame)`` verifies the checksum. A frame that fails is dropped one byte at a
    time, so a real frame starting inside a corrupted one is still found.
    """

    def __init__(
        self,
        header: bytes,
        min_bytes: int,
        frame_length: Callable[[bytes], int | None],
        check: Callable[[bytes], bool],
    ) -> None:
        self.header = header
        self.min_bytes = max(min_bytes, len(header))
        self.frame_length = frame_length
        self.check = check
        self.buffer = bytearray()
        self.bad_frames = 0
        self.skipped_bytes = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every complete, checked frame found so far."""
        self.buffer += data
        frames: list[bytes] = []
        buf = self.buffer
        while True:
            start = buf.find(self.header)
            if start < 0:
                keep = len(self.header) - 1  # the tail may be the start of a header
                self._skip(len(buf) - keep if len(buf) > keep else 0)
                break
            self._skip(start)
            if len(buf) < self.min_bytes:
                break
            length = self.frame_length(bytes(buf[: self.min_bytes]))
            if length is None:
                self.bad_frames += 1
                self._skip(1)
                continue
            if len(buf) < length:
                break
            frame = bytes(buf[:length])
            if self.check(frame):
                frames.append(frame)
                del buf[:length]
            else:
                self.bad_frames += 1
                self._skip(1)
        if len(buf) > MAX_BUFFER_BYTES:
            self._skip(len(buf) - MAX_BUFFER_BYTES)
        return frames

    def clear(self) -> None:
        """Forget partial data (after a reopen or a flushed port)."""
        self.buffer.clear()

    def _skip(self, count: int) -> None:
        if count > 0:
            del self.buffer[:count]
            self.skipped_bytes += count


#: Options of a serial driver.
SO = TypeVar("SO", bound=SerialOptions, covariant=True, default=SerialOptions)
#: Options of a duty-cycled particle sensor.
DO = TypeVar("DO", bound=DutyCycleOptions, covariant=True, default=DutyCycleOptions)


class SerialDriver(PolledDriver[SO]):
    """A polled sensor on a serial port; the leaf says how to configure and read it."""

    Options: ClassVar[type[BaseModel]] = SerialOptions
    BAUDRATE_BPS: ClassVar[int] = 9600

    def __init__(self, config: SensorConfig, options: SO) -> None:
        super().__init__(config, options)
        self.port: serial.Serial | None = None
        self.scanner = self.make_scanner()
        self.wait: Callable[[float], None] = time.sleep  # tests may shorten waits

    # -- what a leaf provides -------------------------------------------------------------

    @abstractmethod
    def make_scanner(self) -> FrameScanner:
        """The frame format of this sensor."""

    def configure(self) -> None:
        """Put a freshly opened device in the wanted mode (called after every reopen)."""

    @abstractmethod
    def read_frames(self) -> list[Sample]:
        """Read once from an open, configured device."""

    # -- life cycle --------------------------------------------------------------------

    def open(self) -> None:
        self._ensure_open()

    def close(self) -> None:
        port, self.port = self.port, None
        self.scanner.clear()
        if port is not None:
            with contextlib.suppress(*PORT_ERRORS):
                port.close()

    def read(self) -> list[Sample]:
        self._ensure_open()
        try:
            return self.read_frames()
        except PORT_ERRORS as exc:
            self.close()
            raise DriverError(f"{self.options.port}: {_reason(exc)}") from None
        except DriverError:
            self.close()  # a silent device is reopened and reconfigured next time
            raise

    def _ensure_open(self) -> None:
        if self.port is not None:
            return
        path = self.options.port
        try:
            self.port = serial.Serial(path, self.BAUDRATE_BPS, timeout=POLL_TIMEOUT_S)
        except (OSError, serial.SerialException, ValueError) as exc:
            raise DriverError(f"{path}: cannot open: {_reason(exc)}") from None
        self.scanner.clear()
        try:
            self.configure()
        except PORT_ERRORS as exc:
            self.close()
            raise DriverError(f"{path}: {_reason(exc)}") from None
        except DriverError:
            self.close()
            raise

    # -- helpers for leaves ------------------------------------------------------------

    def send(self, command: bytes) -> None:
        """Write a command to the device."""
        assert self.port is not None
        self.port.write(command)
        self.port.flush()

    def discard_input(self) -> None:
        """Drop stale bytes (old frames) before a request."""
        assert self.port is not None
        self.port.reset_input_buffer()
        self.scanner.clear()

    def wait_frame(self, accept: Callable[[bytes], bool], timeout_s: float | None = None) -> bytes:
        """Return the first checked frame ``accept`` takes; :class:`DriverError` on timeout."""
        limit_s = self.options.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit_s
        while True:
            for frame in self._receive():
                if accept(frame):
                    return frame
            if time.monotonic() >= deadline:
                raise DriverError(
                    f"{self.options.port}: no valid frame within {limit_s:g} s"
                )

    def latest_frame(self, accept: Callable[[bytes], bool]) -> bytes:
        """The newest accepted frame already received, else the next one to arrive."""
        assert self.port is not None
        newest: bytes | None = None
        while self.port.in_waiting:
            for frame in self._receive():
                if accept(frame):
                    newest = frame
        return newest if newest is not None else self.wait_frame(accept)

    def _receive(self) -> list[bytes]:
        assert self.port is not None
        data = self.port.read(max(1, self.port.in_waiting))
        return self.scanner.feed(data) if data else []


class DutyCycleDriver(SerialDriver[DO]):
    """A laser particle sensor: woken for a reading, optionally asleep in between.

    With ``duty_cycle`` on, each read wakes the sensor, waits ``warmup_s`` (the fan must
    flush the chamber before values are stable) and puts it back to sleep, sparing the
    laser, whose life is rated in thousands of hours.

    The sensor either answers a request for each measurement (query or passive mode) or
    streams one every second or so (active mode); :meth:`measure` handles both, so a leaf
    only says which mode is configured, its commands and how to parse a data frame.
    """

    Options: ClassVar[type[BaseModel]] = DutyCycleOptions

    def __init__(self, config: SensorConfig, options: DO) -> None:
        check_duty_cycle(config, options)
        super().__init__(config, options)
        self.woke_at: float | None = None

    @abstractmethod
    def reports_actively(self) -> bool:
        """Whether the options put the sensor in active (streaming) mode."""

    @abstractmethod
    def set_working(self, working: bool) -> None:
        """Send the sleep or work command."""

    @abstractmethod
    def set_reporting(self, active: bool) -> None:
        """Send the reporting-mode command: active (streaming) or on request."""

    @abstractmethod
    def request(self) -> None:
        """Send the command asking a sensor in query mode for one measurement."""

    @abstractmethod
    def is_data(self, frame: bytes) -> bool:
        """Whether a checked frame is a measurement (not a command reply)."""

    @abstractmethod
    def parse(self, frame: bytes) -> list[Sample]:
        """The samples of a measurement frame."""

    def configure(self) -> None:
        # A sensor left asleep (agent stopped mid-cycle) must wake before anything else.
        self.set_working(True)
        self.woke_at = time.monotonic()
        self.set_reporting(self.reports_actively())

    def measure(self) -> list[Sample]:
        """One measurement from the awake sensor: the newest streamed, or a requested one."""
        if self.reports_actively():
            frame = self.latest_frame(self.is_data)
        else:
            self.discard_input()  # a stale frame must not pass for the answer
            self.request()
            frame = self.wait_frame(self.is_data)
        return self.parse(frame)

    def read_frames(self) -> list[Sample]:
        if self.woke_at is None:
            self.set_working(True)
            self.woke_at = time.monotonic()
        if self.options.duty_cycle:
            remaining_s = self.options.warmup_s - (time.monotonic() - self.woke_at)
            if remaining_s > 0:
                self.wait(remaining_s)
        samples = self.measure()
        if self.options.duty_cycle:
            self.set_working(False)
            self.woke_at = None
        return samples


def _reason(exc: BaseException) -> str:
    if isinstance(exc, termios.error) and len(exc.args) == 2:
        return str(exc.args[1])
    text = str(exc)
    return text.split(": ", 1)[-1] if text.startswith("[Errno") else text
