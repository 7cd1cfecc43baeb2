"""GPIO drivers on gpiozero MockFactory pins, driven by the test."""

import threading
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockChargingPin

from edge.config import SensorConfig
from edge.drivers import Sample, create_driver
from edge.drivers.gpio import CpuTemperatureDriver, DigitalEventDriver, LightDriver, ldr_lux
from fabcity.errors import ConfigError, DriverError
from tests.edge.drivers.mock_adc import VREF_V, MockMcp3008
from tests.edge.drivers.serial_sim import wait_until

DEBOUNCE_S = 0.04


class Recorder:
    """Collects emitted samples from the driver's threads."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.lock = threading.Lock()

    def __call__(self, samples: list[Sample]) -> None:
        with self.lock:
            self.samples.extend(samples)

    def values(self) -> list[float]:
        with self.lock:
            return [s.value for s in self.samples]


def event_driver(driver: str, **options: object) -> DigitalEventDriver:
    made = create_driver(SensorConfig(driver=driver, name=driver, **options))
    assert isinstance(made, DigitalEventDriver)
    made.open()
    return made


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_door_reports_each_debounced_change_with_its_own_time(mock_factory) -> None:
    pin = mock_factory.pin(17)
    driver = event_driver("door", pin=17, debounce_s=DEBOUNCE_S)
    rec = Recorder()
    try:
        driver.start(rec)
        assert rec.values() == [1.0]  # pull-up, switch open: the door is open at start
        before_close_ms = now_ms()
        pin.drive_low()  # the door closes; the reed contact bounces
        after_close_ms = now_ms()
        for _ in range(3):
            time.sleep(0.003)
            pin.drive_high()
            time.sleep(0.003)
            pin.drive_low()
        assert wait_until(lambda: len(rec.values()) == 2)
        time.sleep(0.2)
        before_open_ms = now_ms()
        pin.drive_high()
        after_open_ms = now_ms()
        assert wait_until(lambda: len(rec.values()) == 3)
        time.sleep(2 * DEBOUNCE_S)
    finally:
        driver.close()
    _, closed, reopened = rec.samples
    assert [closed.value, reopened.value] == [0, 1]
    assert closed.ts_ms is not None and reopened.ts_ms is not None
    # stamped at the first edge of the burst, not when it settled
    assert before_close_ms <= closed.ts_ms <= after_close_ms
    assert before_open_ms <= reopened.ts_ms <= after_open_ms


def test_door_open_level_low_inverts(mock_factory) -> None:
    pin = mock_factory.pin(22)
    driver = event_driver("door", pin=22, open_level="low", debounce_s=0.0)
    rec = Recorder()
    try:
        driver.start(rec)
        pin.drive_low()
        assert wait_until(lambda: len(rec.values()) == 2)
    finally:
        driver.close()
    assert rec.values() == [0, 1]


def test_button_short_glitch_is_ignored_press_and_release_reported(mock_factory) -> None:
    pin = mock_factory.pin(27)
    debounce_s = 0.25  # wide margin: a loaded machine may oversleep the 5 ms glitch
    driver = event_driver("button", pin=27, debounce_s=debounce_s)
    rec = Recorder()
    try:
        driver.start(rec)
        pin.drive_low()  # a 5 ms glitch, shorter than the debounce time
        time.sleep(0.005)
        pin.drive_high()
        time.sleep(1.5 * debounce_s)
        assert rec.values() == [0]
        pin.drive_low()
        assert wait_until(lambda: len(rec.values()) == 2)
        pin.drive_high()
        assert wait_until(lambda: len(rec.values()) == 3)
        assert driver.current() == [Sample("button", 0)]
    finally:
        driver.close()
    assert rec.values() == [0, 1, 0]


def test_motion_reports_pir_pulses(mock_factory) -> None:
    pin = mock_factory.pin(4)
    driver = event_driver("motion", pin=4)
    rec = Recorder()
    try:
        driver.start(rec)
        for _ in range(2):
            pin.drive_high()
            time.sleep(0.02)
            pin.drive_low()
            time.sleep(0.02)
        assert wait_until(lambda: len(rec.values()) == 5)
    finally:
        driver.close()
    assert rec.values() == [0, 1, 0, 1, 0]
    stamps = [s.ts_ms for s in rec.samples[1:]]
    assert stamps == sorted(stamps) and len(set(stamps)) >= 3


def test_event_driver_needs_a_pin() -> None:
    with pytest.raises(ConfigError, match=r"sensor 'door' \(door\): pin: Field required"):
        create_driver(SensorConfig(driver="door", name="door"))


def test_pin_in_use_is_a_driver_error(mock_factory) -> None:
    first = event_driver("button", pin=5)
    try:
        second = create_driver(SensorConfig(driver="button", name="other", pin=5))
        with pytest.raises(DriverError, match="GPIO 5"):
            second.open()
    finally:
        first.close()


def test_light_in_lux_from_an_ldr_divider(mock_factory) -> None:
    adc = MockMcp3008(lambda _ch, _n: VREF_V / 2)  # LDR equals the fixed resistor: 10 lx
    driver = create_driver(SensorConfig(driver="light", name="lux", channel=1))
    assert isinstance(driver, LightDriver)
    try:
        (sample,) = driver.read()
    finally:
        driver.close()
        adc.close()
    assert sample.metric == "light" and sample.value == pytest.approx(10.0, rel=0.02)
    assert driver.metrics() == {"light": "lx"}


def test_ldr_curve_is_monotonic() -> None:
    opts = LightDriver.Options.model_validate({"channel": 0})
    lux = [ldr_lux(v, 3.3, opts) for v in (0.0, 0.5, 1.65, 3.0, 3.3)]
    assert lux[0] == 0.0 and lux == sorted(lux) and lux[-1] > 10_000


def test_light_relative_level_from_rc_timing(mock_factory) -> None:
    levels = {}
    for pin, charge_s in ((18, 0.003), (23, 0.030)):  # bright: fast charge; dark: slow
        mock_factory.pin(pin, pin_class=MockChargingPin, charge_time=charge_s)
        driver = create_driver(SensorConfig(driver="light", name="ldr", pin=pin,
                                            charge_time_limit_s=0.05))
        try:
            driver.open()
            time.sleep(0.2)
            (sample,) = driver.read()
        finally:
            driver.close()
        assert sample.metric == "light_level" and 0 <= sample.value <= 100
        levels[charge_s] = sample.value
    assert levels[0.003] > levels[0.030] + 20  # ~94 % against ~40 %


def test_light_needs_exactly_one_input() -> None:
    with pytest.raises(ConfigError, match=r"sensor 'l' \(light\).*exactly one of channel"):
        create_driver(SensorConfig(driver="light", name="l"))


def test_cpu_temperature_reads_the_thermal_zone(tmp_path: Path, mock_factory) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    driver = create_driver(SensorConfig(driver="cpu_temperature", name="soc",
                                        sensor_file=str(zone)))
    assert isinstance(driver, CpuTemperatureDriver)
    try:
        assert driver.read() == [Sample("temperature", 48.31)]
        zone.write_text("garbage\n")
        with pytest.raises(DriverError):
            driver.read()
    finally:
        driver.close()


def test_cpu_temperature_missing_file_is_a_driver_error(tmp_path: Path, mock_factory) -> None:
    driver = create_driver(SensorConfig(driver="cpu_temperature", name="soc",
                                        sensor_file=str(tmp_path / "absent")))
    with pytest.raises(DriverError, match="absent"):
        driver.read()
