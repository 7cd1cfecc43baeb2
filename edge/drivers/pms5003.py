"""Plantower PMS5003 particulate sensor (data manual V2.3).

UART 9600 8N1. Frames are ``42 4D LENH LENL DATA... CSH CSL`` with big-endian 16-bit fields;
the checksum is the sum of every byte before it. A measurement carries length 28 (13 data
words: PM1/PM2.5/PM10 at CF=1, the same under atmospheric environment, six particle counts,
a reserved word); a command reply carries length 4. Commands are ``42 4D CMD DATAH DATAL
CSH CSL``: 0xE1 mode (0 passive, 1 active), 0xE2 read in passive mode, 0xE4 sleep (0) or
wake (1).
"""

from typing import Literal

from pydantic import Field

from edge.drivers.base import Sample
from edge.drivers.serial_base import DutyCycleDriver, DutyCycleOptions, FrameScanner

__all__ = ["COUNT_METRICS", "Pms5003Driver", "Pms5003Options", "command", "parse_measurement"]

HEADER = b"\x42\x4d"
DATA_LENGTH = 28  # 13 words + checksum
REPLY_LENGTH = 4
CMD_MODE = 0xE1
CMD_READ = 0xE2
CMD_SLEEP = 0xE4
MODE_PASSIVE, MODE_ACTIVE = 0x00, 0x01
SLEEP, WAKE = 0x00, 0x01

#: Particles beyond a diameter per 0.1 L of air (data words 7..12).
COUNT_METRICS = (
    "particles_0_3um", "particles_0_5um", "particles_1um",
    "particles_2_5um", "particles_5um", "particles_10um",
)
COUNT_UNIT = "count/dL"


def command(cmd: int, data: int = 0) -> bytes:
    """A 7-byte host command with its checksum."""
    body = HEADER + bytes([cmd]) + data.to_bytes(2, "big")
    return body + (sum(body) & 0xFFFF).to_bytes(2, "big")


def _frame_length(start: bytes) -> int | None:
    length = int.from_bytes(start[2:4], "big")
    return 4 + length if length in (DATA_LENGTH, REPLY_LENGTH) else None


def _check(frame: bytes) -> bool:
    return sum(frame[:-2]) & 0xFFFF == int.from_bytes(frame[-2:], "big")


def parse_measurement(frame: bytes) -> list[int]:
    """The 13 data words of a checked measurement frame."""
    return [int.from_bytes(frame[i : i + 2], "big") for i in range(4, 30, 2)]


class Pms5003Options(DutyCycleOptions):
    """Options of the ``pms5003`` driver."""

    mode: Literal["passive", "active"] = Field(
        "passive", description="passive: ask for each reading; active: the sensor streams"
    )
    particle_counts: bool = Field(False, description="also report particles per 0.1 L")


class Pms5003Driver(DutyCycleDriver[Pms5003Options]):
    """PM1, PM2.5, PM10 (atmospheric environment) from a Plantower PMS5003."""

    Options = Pms5003Options
    summary = "Plantower PMS5003 particulate sensor (serial, 9600 baud)"
    METRICS = {"pm1": "ug/m3", "pm2_5": "ug/m3", "pm10": "ug/m3"} | {
        name: COUNT_UNIT for name in COUNT_METRICS
    }

    def metrics(self) -> dict[str, str]:
        if self.options.particle_counts:
            return dict(self.METRICS)
        return {"pm1": "ug/m3", "pm2_5": "ug/m3", "pm10": "ug/m3"}

    def make_scanner(self) -> FrameScanner:
        return FrameScanner(HEADER, 4, _frame_length, _check)

    def set_working(self, working: bool) -> None:
        self.send(command(CMD_SLEEP, WAKE if working else SLEEP))

    def reports_actively(self) -> bool:
        return self.options.mode == "active"

    def set_reporting(self, active: bool) -> None:
        self.send(command(CMD_MODE, MODE_ACTIVE if active else MODE_PASSIVE))

    def request(self) -> None:
        self.send(command(CMD_READ))

    def is_data(self, frame: bytes) -> bool:
        return len(frame) == 4 + DATA_LENGTH

    def parse(self, frame: bytes) -> list[Sample]:
        words = parse_measurement(frame)
        samples = [Sample("pm1", words[3]), Sample("pm2_5", words[4]), Sample("pm10", words[5])]
        if self.options.particle_counts:
            samples += [Sample(name, words[6 + i]) for i, name in enumerate(COUNT_METRICS)]
        return samples
