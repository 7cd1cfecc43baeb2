"""GPIO drivers on gpiozero: door, button, motion (event-driven), light and CPU temperature.

Each driver builds a gpiozero device in :meth:`open`, so it runs on whatever pin factory
gpiozero selects: lgpio on a Pi, ``MockFactory`` in tests. Event drivers report every
debounced change as its own sample, stamped with the time of the change.
"""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from gpiozero import Button, CPUTemperature, DigitalInputDevice, GPIOZeroError, LightSensor
from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypeVar

from edge.config import SensorConfig
from edge.drivers.analog import SpiOptions, open_mcp3008, read_voltage
from edge.drivers.base import EventDriver, PolledDriver, Sample
from edge.drivers.debounce import DebounceThread
from fabcity.errors import DriverError

__all__ = [
    "ButtonDriver",
    "CpuTemperatureDriver",
    "DigitalEventDriver",
    "DoorDriver",
    "LightDriver",
    "MotionDriver",
]

Pin = int | str
CPU_TEMPERATURE_FILE = "/sys/class/thermal/thermal_zone0/temp"


def gpio_error(pin: object, exc: Exception) -> DriverError:
    """A gpiozero or OS failure as a :class:`DriverError` naming the pin."""
    return DriverError(f"GPIO {pin}: {type(exc).__name__}: {exc}")


class DigitalOptions(BaseModel):
    """Options of a debounced digital input."""

    model_config = ConfigDict(extra="forbid")

    pin: Pin = Field(description="BCM number (17) or name (GPIO17, BOARD11)")
    debounce_s: float = Field(0.05, ge=0, le=5, description="input must be stable this long")
    pull_up: bool = Field(True, description="internal pull-up (switch to GND) or pull-down")


#: Options of a digital input driver.
DG = TypeVar("DG", bound=DigitalOptions, covariant=True, default=DigitalOptions)


class DigitalEventDriver(EventDriver[DG]):
    """A debounced digital input; the leaf names the metric and builds the device."""

    Options: ClassVar[type[BaseModel]] = DigitalOptions
    METRIC: ClassVar[str]

    def __init__(self, config: SensorConfig, options: DG) -> None:
        super().__init__(config, options)
        self.device: DigitalInputDevice | None = None
        self._debounce: DebounceThread | None = None

    def make_device(self) -> DigitalInputDevice:
        return DigitalInputDevice(self.options.pin, pull_up=self.options.pull_up)

    def value_of(self, active: bool) -> int:
        """The metric's value when the device is (in)active."""
        return int(active)

    def open(self) -> None:
        if self.device is not None:
            return
        try:
            self.device = self.make_device()
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            raise gpio_error(self.options.pin, exc) from None

    def current(self) -> list[Sample]:
        """The present state, for ``fabcity edge check``."""
        if self.device is None:
            raise DriverError(f"GPIO {self.options.pin}: not open")
        return [Sample(self.METRIC, self.value_of(self.device.is_active))]

    def start(self, emit: Callable[[list[Sample]], None]) -> None:
        device = self.device
        if device is None:
            raise DriverError(f"GPIO {self.options.pin}: start() before open()")
        initial = self.value_of(device.is_active)

        def report(value: int, ts_ms: int) -> None:
            emit([Sample(self.METRIC, value, ts_ms=ts_ms)])

        self._debounce = DebounceThread(self.options.debounce_s, initial, report, self.name)
        device.when_activated = lambda: self._edge(True)
        device.when_deactivated = lambda: self._edge(False)
        emit([Sample(self.METRIC, initial)])  # the state at start is known, not a change

    def _edge(self, active: bool) -> None:
        if self._debounce is not None:
            self._debounce.edge(self.value_of(active))

    def close(self) -> None:
        device, self.device = self.device, None
        debounce, self._debounce = self._debounce, None
        if debounce is not None:
            debounce.stop()
        if device is not None:
            device.close()


class DoorOptions(DigitalOptions):
    """Options of the ``door`` driver."""

    open_level: Literal["high", "low"] = Field(
        "high", description="pin level when the door is open (reed switch to GND: high)"
    )


class DoorDriver(DigitalEventDriver[DoorOptions]):
    """A door or lid with a reed switch: ``door_open`` 1 when open."""

    Options = DoorOptions
    summary = "door or lid reed switch (GPIO, debounced, event-driven)"
    METRIC = "door_open"
    METRICS = {"door_open": "bool"}

    def value_of(self, active: bool) -> int:
        # gpiozero: with a pull-up a pin is active when low, with a pull-down when high.
        high = active != self.options.pull_up
        return int(high == (self.options.open_level == "high"))


class ButtonDriver(DigitalEventDriver[DigitalOptions]):
    """A push button to GND: ``button`` 1 while pressed."""

    summary = "push button (GPIO, debounced, event-driven)"
    METRIC = "button"
    METRICS = {"button": "bool"}

    def make_device(self) -> DigitalInputDevice:
        return Button(self.options.pin, pull_up=self.options.pull_up)


class MotionOptions(DigitalOptions):
    """Options of the ``motion`` driver (a PIR drives its output high on motion)."""

    pull_up: bool = Field(False, description="PIR outputs drive the line: pull-down")
    debounce_s: float = Field(0.0, ge=0, le=5, description="PIR outputs do not bounce")


class MotionDriver(DigitalEventDriver[MotionOptions]):
    """A PIR motion sensor (HC-SR501 style): ``motion`` 1 while motion is seen."""

    Options = MotionOptions
    summary = "PIR motion sensor (GPIO, event-driven)"
    METRIC = "motion"
    METRICS = {"motion": "bool"}


class LightOptions(SpiOptions):
    """Options of the ``light`` driver: an LDR on an MCP3008 channel or in an RC circuit."""

    channel: int | None = Field(None, ge=0, le=7, description="MCP3008 channel (lux mode)")
    pin: Pin | None = Field(None, description="GPIO of an LDR + capacitor (relative mode)")
    fixed_resistor_ohm: float = Field(10_000, gt=0, description="divider resistor to GND")
    ldr_ohm_at_10_lx: float = Field(10_000, gt=0, description="LDR datasheet R10 (GL5528)")
    gamma: float = Field(0.7, gt=0, le=2, description="LDR datasheet gamma")
    charge_time_limit_s: float = Field(0.01, gt=0, le=1, description="RC mode: dark above")

    @model_validator(mode="after")
    def _one_input(self) -> "LightOptions":
        if (self.channel is None) == (self.pin is None):
            raise ValueError("set exactly one of channel (MCP3008 LDR divider) or pin (RC)")
        return self


def ldr_lux(voltage: float, vref: float, options: LightOptions) -> float:
    """Illuminance from an LDR (to Vref) over a fixed resistor (to GND).

    R_ldr = R_fixed * (Vref - V) / V and lux = 10 * (R10 / R_ldr) ** (1 / gamma).
    """
    if voltage <= 0:
        return 0.0
    ratio = max(vref - voltage, 1e-6 * vref) / voltage
    r_ldr = options.fixed_resistor_ohm * ratio
    return 10.0 * math.pow(options.ldr_ohm_at_10_lx / r_ldr, 1.0 / options.gamma)


class LightDriver(PolledDriver[LightOptions]):
    """Light from an LDR: lux through an MCP3008 divider, or a relative level (RC timing)."""

    Options = LightOptions
    summary = "LDR light sensor: lux via MCP3008 channel, or relative level via GPIO RC"
    METRICS = {"light": "lx", "light_level": "%"}

    def __init__(self, config: SensorConfig, options: LightOptions) -> None:
        super().__init__(config, options)
        self.device: Any = None

    def metrics(self) -> dict[str, str]:
        return {"light": "lx"} if self.options.channel is not None else {"light_level": "%"}

    def open(self) -> None:
        if self.device is not None:
            return
        if self.options.channel is not None:
            self.device = open_mcp3008(self.options.channel, self.options)
            return
        try:
            self.device = LightSensor(self.options.pin, queue_len=1,
                                      charge_time_limit=self.options.charge_time_limit_s)
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            raise gpio_error(self.options.pin, exc) from None

    def read(self) -> list[Sample]:
        self.open()
        if self.options.channel is not None:
            volts = read_voltage(self.device, self.options.channel)
            lux = ldr_lux(volts, self.options.max_voltage, self.options)
            return [Sample("light", round(lux, 1))]
        return [Sample("light_level", round(100.0 * float(self.device.value), 1))]

    def close(self) -> None:
        device, self.device = self.device, None
        if device is not None:
            device.close()


class CpuTemperatureOptions(BaseModel):
    """Options of the ``cpu_temperature`` driver."""

    model_config = ConfigDict(extra="forbid")

    sensor_file: Path = Field(Path(CPU_TEMPERATURE_FILE), description="kernel thermal zone")


class CpuTemperatureDriver(PolledDriver[CpuTemperatureOptions]):
    """The SoC temperature of the Pi (a hot enclosure shows here first)."""

    Options = CpuTemperatureOptions
    summary = "Raspberry Pi SoC temperature (kernel thermal zone)"
    METRICS = {"temperature": "degC"}

    def __init__(self, config: SensorConfig, options: CpuTemperatureOptions) -> None:
        super().__init__(config, options)
        self.device: CPUTemperature | None = None

    def open(self) -> None:
        if self.device is None:
            try:
                self.device = CPUTemperature(sensor_file=str(self.options.sensor_file))
            except (GPIOZeroError, OSError, ValueError) as exc:
                raise DriverError(f"{self.options.sensor_file}: {exc}") from None

    def read(self) -> list[Sample]:
        self.open()
        assert self.device is not None
        try:
            return [Sample("temperature", round(self.device.temperature, 2))]
        except (OSError, ValueError) as exc:
            raise DriverError(f"{self.options.sensor_file}: {exc}") from None

    def close(self) -> None:
        device, self.device = self.device, None
        if device is not None:
            device.close()
