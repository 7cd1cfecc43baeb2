"""DS18B20 1-wire thermometers, read from the kernel's sysfs files (``w1-gpio`` overlay).

``/sys/bus/w1/devices/28-xxxxxxxxxxxx/w1_slave`` holds two lines::

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

The first ends in ``YES`` only if the scratchpad's CRC matched; the driver checks the CRC
itself too and refuses the tell-tale values of a failing bus: an all-zero scratchpad and
the 85 °C power-on reset value. Kernels that only offer ``temperature`` (millidegrees) are
read from that file.
"""

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge.drivers.base import PolledDriver, Sample
from fabcity.errors import DriverError

__all__ = ["Ds18b20Driver", "Ds18b20Options", "crc8", "parse_w1_slave"]

W1_DEVICES_DIR = Path("/sys/bus/w1/devices")
FAMILY_PREFIX = "28-"
POWER_ON_RESET_MILLI_C = 85_000
_CRC_LINE = re.compile(r"^((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (yes|no)$")
_TEMP_LINE = re.compile(r"^(?:[0-9a-f]{2} ){9}t=(-?\d+)$")


def crc8(data: bytes) -> int:
    """Dallas/Maxim 1-wire CRC-8 (polynomial x^8 + x^5 + x^4 + 1, reflected 0x8C)."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def parse_w1_slave(text: str) -> float:
    """Temperature in degC from a ``w1_slave`` file; :class:`DriverError` if untrustworthy."""
    lines = text.strip().splitlines()
    if len(lines) != 2:
        raise DriverError(f"w1_slave: expected 2 lines, got {len(lines)}")
    crc_line = _CRC_LINE.match(lines[0].strip().lower())
    temp_line = _TEMP_LINE.match(lines[1].strip().lower())
    if crc_line is None or temp_line is None:
        raise DriverError(f"w1_slave: unexpected format: {lines[0]!r}")
    if crc_line.group(3) != "yes":
        raise DriverError("w1_slave: CRC check failed (NO): check wiring and the pull-up")
    scratchpad = bytes.fromhex(crc_line.group(1))
    if crc8(scratchpad[:8]) != scratchpad[8] or not any(scratchpad):
        raise DriverError("w1_slave: scratchpad CRC mismatch or all zeros (bus fault)")
    milli_c = int(temp_line.group(1))
    return _check_milli_c(milli_c)


def _check_milli_c(milli_c: int) -> float:
    if milli_c == POWER_ON_RESET_MILLI_C:
        raise DriverError("85 degC is the power-on reset value: the sensor lost power")
    return milli_c / 1000.0


class Ds18b20Options(BaseModel):
    """Options of the ``ds18b20`` driver."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None, pattern=r"^28-[0-9a-f]{12}$",
        description="sensor id, e.g. 28-0316a2795bff (default: the only one present)",
    )
    devices_dir: Path = Field(W1_DEVICES_DIR, description="sysfs 1-wire devices directory")


class Ds18b20Driver(PolledDriver[Ds18b20Options]):
    """A DS18B20 waterproof or TO-92 thermometer on the 1-wire bus (GPIO 4)."""

    Options = Ds18b20Options
    summary = "DS18B20 1-wire thermometer (kernel w1 sysfs)"
    METRICS = {"temperature": "degC"}

    def device_dir(self) -> Path:
        """The sensor's sysfs directory (its address, or the single one present)."""
        base = self.options.devices_dir
        if self.options.address is not None:
            path = base / self.options.address
            if not path.exists():
                raise DriverError(f"1-wire sensor {self.options.address} not found in {base}")
            return path
        found = sorted(base.glob(f"{FAMILY_PREFIX}*"))
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none (is dtoverlay=w1-gpio set?)"
            raise DriverError(f"set address: {len(found)} DS18B20 found in {base}: {names}")
        return found[0]

    def open(self) -> None:
        self.device_dir()

    def read(self) -> list[Sample]:
        path = self.device_dir()
        try:
            slave = path / "w1_slave"
            if slave.exists():
                return [Sample("temperature", parse_w1_slave(slave.read_text()))]
            text = (path / "temperature").read_text().strip()
        except OSError as exc:  # ENODEV / ENXIO when the sensor drops off the bus
            raise DriverError(f"{path.name}: {exc.strerror or exc}") from None
        try:
            milli_c = int(text)
        except ValueError:
            raise DriverError(f"{path.name}/temperature: not a number: {text!r}") from None
        return [Sample("temperature", _check_milli_c(milli_c))]
