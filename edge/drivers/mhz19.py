"""Winsen MH-Z19B CO2 sensor (datasheet V1.0).

UART 9600 8N1, 9-byte frames ``FF ...`` whose last byte is the checksum: the two's
complement of the sum of bytes 1..7. Read: ``FF 01 86 00 00 00 00 00 79`` -> ``FF 86 HIGH
LOW ...``, CO2 = HIGH * 256 + LOW ppm. Automatic baseline correction: ``FF 01 79 A0 ...``
(on) or ``FF 01 79 00 ...`` (off). Detection range: ``FF 01 99 00 00 00 HIGH LOW``.
"""

import time
from typing import Literal

from pydantic import Field

from edge.config import SensorConfig
from edge.drivers.base import Sample
from edge.drivers.serial_base import FrameScanner, SerialDriver, SerialOptions

__all__ = ["Mhz19Driver", "Mhz19Options", "checksum", "command"]

HEAD = 0xFF
SENSOR_NUMBER = 0x01
FRAME_BYTES = 9
CMD_READ = 0x86
CMD_ABC = 0x79
CMD_RANGE = 0x99
ABC_ON, ABC_OFF = 0xA0, 0x00
PREHEAT_S = 180.0  # datasheet: readings are unreliable for three minutes after power-on


def checksum(frame: bytes) -> int:
    """Checksum of a 9-byte frame: 0xFF - (sum of bytes 1..7) + 1, modulo 256."""
    return (0x100 - (sum(frame[1:8]) & 0xFF)) & 0xFF


def command(cmd: int, data: bytes = b"") -> bytes:
    """A 9-byte host command with its checksum."""
    body = bytes([HEAD, SENSOR_NUMBER, cmd]) + data.ljust(5, b"\x00")
    return body + bytes([checksum(body + b"\x00")])


def _check(frame: bytes) -> bool:
    return checksum(frame) == frame[8]


def _is_reading(frame: bytes) -> bool:
    return frame[1] == CMD_READ


class Mhz19Options(SerialOptions):
    """Options of the ``mhz19`` driver."""

    abc: bool = Field(
        True, description="automatic baseline correction (needs fresh air daily; off indoors)"
    )
    range_ppm: Literal[2000, 5000, 10000] | None = Field(
        None, description="detection range to set on start (default: leave as is)"
    )
    preheat_s: float = Field(
        PREHEAT_S, ge=0, le=3600, description="flag readings as warming_up this long after start"
    )


class Mhz19Driver(SerialDriver[Mhz19Options]):
    """CO2 from a Winsen MH-Z19B."""

    Options = Mhz19Options
    summary = "Winsen MH-Z19B CO2 sensor (serial, 9600 baud)"
    METRICS = {"co2": "ppm"}

    def __init__(self, config: SensorConfig, options: Mhz19Options) -> None:
        super().__init__(config, options)
        self.opened_at = time.monotonic()

    def make_scanner(self) -> FrameScanner:
        return FrameScanner(bytes([HEAD]), 1, lambda _start: FRAME_BYTES, _check)

    def configure(self) -> None:
        self.opened_at = time.monotonic()
        self.send(command(CMD_ABC, bytes([ABC_ON if self.options.abc else ABC_OFF])))
        range_ppm = self.options.range_ppm
        if range_ppm is not None:
            self.send(command(CMD_RANGE, b"\x00\x00\x00" + range_ppm.to_bytes(2, "big")))

    def read_frames(self) -> list[Sample]:
        self.discard_input()
        self.send(command(CMD_READ))
        frame = self.wait_frame(_is_reading)
        co2 = frame[2] * 256 + frame[3]
        warming = time.monotonic() - self.opened_at < self.options.preheat_s
        return [Sample("co2", co2, flags=("warming_up",) if warming else ())]
