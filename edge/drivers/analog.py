"""Analog inputs through an MCP3008 SPI ADC: any channel with scale and offset, and an
SCT-013 current clamp turned into current, power, energy and machine run state.

The ADC is a gpiozero ``MCP3008``: hardware SPI on a Pi, ``MockSPIDevice`` in tests.
"""

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpiozero import MCP3008, GPIOZeroError
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from edge.config import SensorConfig
from edge.drivers.base import PolledDriver, Sample
from edge.drivers.energy import EnergyMeter, RunState
from fabcity.catalogue import canonical_unit
from fabcity.errors import BadReading, DriverError
from fabcity.names import SENSOR_PATTERN

__all__ = [
    "CurrentClampDriver",
    "CurrentClampOptions",
    "Mcp3008Driver",
    "Mcp3008Options",
    "SpiOptions",
    "open_mcp3008",
    "read_voltage",
    "rms_current",
]


class SpiOptions(BaseModel):
    """Where the MCP3008 sits on the SPI bus."""

    model_config = ConfigDict(extra="forbid")

    spi_port: int = Field(0, ge=0, le=1, description="SPI bus (0: GPIO 9/10/11)")
    spi_device: int = Field(0, ge=0, le=1, description="chip select: 0 = CE0 (GPIO 8), 1 = CE1")
    max_voltage: float = Field(3.3, gt=0, le=5.5, description="ADC reference voltage (VREF)")


def open_mcp3008(channel: int, options: SpiOptions, differential: bool = False) -> MCP3008:
    """An MCP3008 channel, or :class:`DriverError` if the SPI bus is unavailable."""
    try:
        return MCP3008(channel=channel, differential=differential,
                       max_voltage=options.max_voltage, port=options.spi_port,
                       device=options.spi_device)
    except (GPIOZeroError, OSError, RuntimeError) as exc:
        raise DriverError(
            f"MCP3008 on SPI{options.spi_port}.{options.spi_device} channel {channel}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def read_voltage(device: Any, channel: int) -> float:
    """One conversion in volts."""
    try:
        return float(device.voltage)
    except (GPIOZeroError, OSError, RuntimeError) as exc:
        raise DriverError(f"MCP3008 channel {channel}: {type(exc).__name__}: {exc}") from None


class Mcp3008Options(SpiOptions):
    """Options of the ``mcp3008`` driver: value = volts * scale + offset."""

    channel: int = Field(ge=0, le=7, description="input channel 0-7")
    differential: bool = Field(False, description="channel pair (0-1, 2-3 ...) instead of single")
    metric: str = Field("voltage", pattern=SENSOR_PATTERN, description="metric to report")
    unit: str | None = Field(None, description="unit (default: the catalogue's for the metric)")
    scale: float = Field(1.0, description="multiply volts by this")
    offset: float = Field(0.0, description="then add this")
    samples: int = Field(1, ge=1, le=1000, description="average this many conversions")

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str | None, info: ValidationInfo) -> str | None:
        try:
            return canonical_unit(info.data.get("metric", "voltage"), unit)
        except BadReading as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _unit_needed(self) -> "Mcp3008Options":
        if self.unit is None:
            try:
                self.unit = canonical_unit(self.metric, None)
            except BadReading as exc:
                raise ValueError(f"unit: {exc}") from None
        return self


class Mcp3008Driver(PolledDriver[Mcp3008Options]):
    """Any analog sensor on an MCP3008 channel (TMP36, soil moisture, gas modules ...)."""

    Options = Mcp3008Options
    summary = "MCP3008 SPI ADC channel: metric = volts * scale + offset"
    METRICS = {"voltage": "V"}

    def __init__(self, config: SensorConfig, options: Mcp3008Options) -> None:
        super().__init__(config, options)
        self.device: Any = None

    def metrics(self) -> dict[str, str]:
        return {self.options.metric: self.options.unit or "V"}

    def open(self) -> None:
        if self.device is None:
            options = self.options
            self.device = open_mcp3008(options.channel, options, options.differential)

    def read(self) -> list[Sample]:
        self.open()
        volts = sum(read_voltage(self.device, self.options.channel)
                    for _ in range(self.options.samples)) / self.options.samples
        return [Sample(self.options.metric, volts * self.options.scale + self.options.offset)]

    def close(self) -> None:
        device, self.device = self.device, None
        if device is not None:
            device.close()


def rms_current(volts: list[float], amps_per_volt: float) -> float:
    """RMS of the AC part of a window of ADC voltages (the DC bias is the window mean)."""
    mean = math.fsum(volts) / len(volts)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in volts) / len(volts)) * amps_per_volt


class CurrentClampOptions(SpiOptions):
    """Options of the ``current_clamp`` driver."""

    channel: int = Field(ge=0, le=7, description="MCP3008 channel of the biased clamp signal")
    amps_per_volt: float = Field(30.0, gt=0, description="clamp ratio (SCT-013-030: 30 A/V)")
    window_samples: int = Field(400, ge=20, le=20_000, description="conversions per RMS window")
    noise_floor_a: float = Field(0.05, ge=0, description="RMS currents below this read 0")
    voltage_v: float = Field(230.0, gt=0, le=1000, description="mains voltage")
    power_factor: float = Field(1.0, gt=0, le=1, description="load power factor")
    running_above_w: float = Field(50.0, gt=0, description="state turns running at this power")
    idle_below_w: float = Field(20.0, ge=0, description="state turns idle at or below this")
    state_file: Path | None = Field(
        None, description="energy counter file (default: <name>.energy.json in the work dir)"
    )
    persist_interval_s: float = Field(60.0, ge=0, le=3600, description="save the counter")

    @model_validator(mode="after")
    def _hysteresis(self) -> "CurrentClampOptions":
        if self.idle_below_w >= self.running_above_w:
            raise ValueError("idle_below_w must be below running_above_w (hysteresis)")
        return self


class CurrentClampDriver(PolledDriver[CurrentClampOptions]):
    """A machine's current, power, energy and run state from an SCT-013 on an MCP3008."""

    Options = CurrentClampOptions
    summary = "SCT-013 current clamp on an MCP3008: current, power, energy, run state"
    METRICS = {"current": "A", "power": "W", "energy": "Wh", "state": "bool"}

    def __init__(self, config: SensorConfig, options: CurrentClampOptions) -> None:
        super().__init__(config, options)
        self.device: Any = None
        self.clock: Callable[[], float] = time.monotonic  # tests drive time
        path = options.state_file or Path(f"{config.name}.energy.json")
        self.meter = EnergyMeter(path, max_gap_s=max(10 * config.interval_s, 60.0))
        self.run_state = RunState(options.running_above_w, options.idle_below_w,
                                  bool(self.meter.running))
        self._saved_s: float | None = None

    def open(self) -> None:
        if self.device is None:
            self.device = open_mcp3008(self.options.channel, self.options)

    def read(self) -> list[Sample]:
        self.open()
        volts = [read_voltage(self.device, self.options.channel)
                 for _ in range(self.options.window_samples)]
        current_a = rms_current(volts, self.options.amps_per_volt)
        if current_a < self.options.noise_floor_a:
            current_a = 0.0
        power_w = current_a * self.options.voltage_v * self.options.power_factor
        now_s = self.clock()
        energy_wh = self.meter.add(power_w, now_s)
        running = self.run_state.update(power_w)
        self.meter.running = running
        if self._saved_s is None or now_s - self._saved_s >= self.options.persist_interval_s:
            self._save(now_s)
        return [
            Sample("current", round(current_a, 3)),
            Sample("power", round(power_w, 1)),
            Sample("energy", round(energy_wh, 4)),
            Sample("state", 1.0 if running else 0.0),
        ]

    def _save(self, now_s: float) -> None:
        try:
            self.meter.save()
        except OSError as exc:
            raise DriverError(f"cannot save energy to {self.meter.path}: {exc}") from None
        self._saved_s = now_s

    def close(self) -> None:
        device, self.device = self.device, None
        if device is not None:
            device.close()
            self._save(self.clock())
