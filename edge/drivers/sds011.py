"""Nova Fitness SDS011 particulate sensor (laser dust sensor control protocol V1.3).

UART 9600 8N1. The sensor sends 10-byte frames ``AA C0 PM25L PM25H PM10L PM10H ID1 ID2 CS AB``
(``CS`` = sum of bytes 2..7 mod 256; values in 0.1 ug/m3) and replies ``AA C5 ...`` to
19-byte commands ``AA B4 CMD D1..D12 FF FF CS AB`` (``CS`` = sum of bytes 2..16 mod 256).
"""

from typing import Literal

from pydantic import Field

from edge.drivers.base import Sample
from edge.drivers.serial_base import DutyCycleDriver, DutyCycleOptions, FrameScanner

__all__ = ["Sds011Driver", "Sds011Options", "command", "parse_measurement"]

HEAD = 0xAA
TAIL = 0xAB
CMD_OUT = 0xB4
REPLY_DATA = 0xC0
REPLY_CMD = 0xC5
FRAME_BYTES = 10

CMD_REPORTING_MODE = 0x02
CMD_QUERY_DATA = 0x04
CMD_SLEEP_WORK = 0x06
SET = 0x01
MODE_ACTIVE, MODE_QUERY = 0x00, 0x01
SLEEP, WORK = 0x00, 0x01
ALL_DEVICES = b"\xff\xff"


def command(cmd: int, *data: int, device_id: bytes = ALL_DEVICES) -> bytes:
    """A 19-byte host command with its checksum."""
    body = bytes([cmd, *data]).ljust(13, b"\x00") + device_id
    return bytes([HEAD, CMD_OUT]) + body + bytes([sum(body) & 0xFF, TAIL])


def _frame_length(start: bytes) -> int | None:
    return FRAME_BYTES if start[1] in (REPLY_DATA, REPLY_CMD) else None


def _check(frame: bytes) -> bool:
    return frame[9] == TAIL and sum(frame[2:8]) & 0xFF == frame[8]


def parse_measurement(frame: bytes) -> tuple[float, float]:
    """(pm2_5, pm10) in ug/m3 from a checked ``AA C0`` frame."""
    return (
        int.from_bytes(frame[2:4], "little") / 10.0,
        int.from_bytes(frame[4:6], "little") / 10.0,
    )


class Sds011Options(DutyCycleOptions):
    """Options of the ``sds011`` driver."""

    mode: Literal["query", "active"] = Field(
        "query", description="query: ask for each reading; active: the sensor reports each second"
    )


class Sds011Driver(DutyCycleDriver[Sds011Options]):
    """PM2.5 and PM10 from a Nova Fitness SDS011 (USB-serial adapter or the Pi's UART)."""

    Options = Sds011Options
    summary = "Nova Fitness SDS011 particulate sensor (serial, 9600 baud)"
    METRICS = {"pm2_5": "ug/m3", "pm10": "ug/m3"}

    def make_scanner(self) -> FrameScanner:
        return FrameScanner(bytes([HEAD]), 2, _frame_length, _check)

    def set_working(self, working: bool) -> None:
        self.send(command(CMD_SLEEP_WORK, SET, WORK if working else SLEEP))

    def reports_actively(self) -> bool:
        return self.options.mode == "active"

    def set_reporting(self, active: bool) -> None:
        self.send(command(CMD_REPORTING_MODE, SET, MODE_ACTIVE if active else MODE_QUERY))

    def request(self) -> None:
        self.send(command(CMD_QUERY_DATA))

    def is_data(self, frame: bytes) -> bool:
        return frame[1] == REPLY_DATA

    def parse(self, frame: bytes) -> list[Sample]:
        pm2_5, pm10 = parse_measurement(frame)
        return [Sample("pm2_5", pm2_5), Sample("pm10", pm10)]
