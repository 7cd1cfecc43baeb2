"""MCP3008 channel and SCT-013 current clamp on gpiozero mock SPI pins."""

import json
import math
from pathlib import Path

import pytest

from edge.config import SensorConfig
from edge.drivers import create_driver
from edge.drivers.analog import CurrentClampDriver, Mcp3008Driver, rms_current
from fabcity.errors import ConfigError
from tests.edge.drivers.mock_adc import VREF_V, MockMcp3008

LSB_V = VREF_V / 1023
BIAS_V = VREF_V / 2
PERIOD_SAMPLES = 20  # one mains cycle every 20 conversions


def sine(peak_v: float) -> MockMcp3008:
    return MockMcp3008(lambda _ch, n: BIAS_V + peak_v * math.sin(2 * math.pi * n / PERIOD_SAMPLES))


def test_mcp3008_channel_scale_and_offset(mock_factory) -> None:
    adc = MockMcp3008(lambda ch, _n: {0: 0.1, 3: 0.75}.get(ch, 0.0))
    # TMP36: 10 mV per degC, 500 mV at 0 degC
    config = SensorConfig(driver="mcp3008", name="tmp36", channel=3, metric="temperature",
                          scale=100, offset=-50)
    driver = create_driver(config)
    assert isinstance(driver, Mcp3008Driver)
    try:
        (sample,) = driver.read()
    finally:
        driver.close()
        adc.close()
    assert sample.metric == "temperature"
    assert sample.value == pytest.approx(25.0, abs=100 * LSB_V)
    assert driver.metrics() == {"temperature": "degC"}


def test_mcp3008_refuses_a_wrong_unit_for_a_catalogued_metric() -> None:
    config = SensorConfig(driver="mcp3008", name="tmp36", channel=0, metric="temperature",
                          unit="K")
    with pytest.raises(ConfigError, match=r"sensor 'tmp36' \(mcp3008\): unit: .*degC"):
        create_driver(config)


def test_mcp3008_channel_out_of_range_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"sensor 'a' \(mcp3008\): channel: .*less than or"):
        create_driver(SensorConfig(driver="mcp3008", name="a", channel=8))


def test_rms_of_a_biased_sine_is_peak_over_root_two() -> None:
    volts = [1.65 + 0.5 * math.sin(2 * math.pi * k / 40) for k in range(400)]
    assert rms_current(volts, 30.0) == pytest.approx(30 * 0.5 / math.sqrt(2), rel=1e-6)


def clamp(tmp_path: Path, interval_s: float = 1, **options: object) -> CurrentClampDriver:
    defaults: dict[str, object] = {"channel": 0, "window_samples": 200, "amps_per_volt": 30,
                                   "voltage_v": 230, "power_factor": 0.9,
                                   "state_file": str(tmp_path / "laser.energy.json"),
                                   "persist_interval_s": 0}
    config = SensorConfig(driver="current_clamp", name="laser", interval_s=interval_s,
                          **(defaults | options))
    driver = create_driver(config)
    assert isinstance(driver, CurrentClampDriver)
    return driver


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_current_clamp_power_energy_and_state(mock_factory, tmp_path: Path) -> None:
    peak_v = 0.5
    adc = sine(peak_v)
    driver = clamp(tmp_path, interval_s=600)
    clock = Clock()
    driver.clock = clock
    try:
        first = {s.metric: s.value for s in driver.read()}
        clock.now_s += 3600  # an hour later, same load
        second = {s.metric: s.value for s in driver.read()}
    finally:
        driver.close()
        adc.close()
    expected_a = peak_v / math.sqrt(2) * 30
    expected_w = expected_a * 230 * 0.9
    assert first["current"] == pytest.approx(expected_a, rel=0.02)
    assert first["power"] == pytest.approx(expected_w, rel=0.02)
    assert first["energy"] == 0.0  # nothing to integrate yet
    assert second["energy"] == pytest.approx(expected_w, rel=0.02)  # one hour at P watts
    assert first["state"] == second["state"] == 1.0


def test_energy_persists_across_restarts(mock_factory, tmp_path: Path) -> None:
    adc = sine(0.2)
    clock = Clock()
    driver = clamp(tmp_path)
    driver.clock = clock
    driver.read()
    clock.now_s += 30
    total = next(s.value for s in driver.read() if s.metric == "energy")
    driver.close()
    assert total > 0
    saved = json.loads((tmp_path / "laser.energy.json").read_text())
    assert saved["energy_wh"] == pytest.approx(total, abs=1e-4)

    restarted = clamp(tmp_path)
    restarted.clock = clock
    clock.now_s += 600  # the downtime (beyond 10 intervals) is not integrated
    after = next(s.value for s in restarted.read() if s.metric == "energy")
    clock.now_s += 30
    later = next(s.value for s in restarted.read() if s.metric == "energy")
    restarted.close()
    adc.close()
    assert after == pytest.approx(total)
    assert later > after


def test_state_has_hysteresis(mock_factory, tmp_path: Path) -> None:
    amplitude = {"peak_v": 0.0}
    adc = MockMcp3008(lambda _ch, n: BIAS_V + amplitude["peak_v"]
                      * math.sin(2 * math.pi * n / PERIOD_SAMPLES))
    driver = clamp(tmp_path, running_above_w=100, idle_below_w=40, power_factor=1.0)
    # power per volt of peak: 30 A/V / sqrt(2) * 230 V ~= 4879 W
    w_per_peak_v = 30 / math.sqrt(2) * 230
    states = []
    try:
        for power_w in (0, 150, 70, 45, 30, 70, 120):
            amplitude["peak_v"] = power_w / w_per_peak_v
            got = {s.metric: s.value for s in driver.read()}
            states.append(int(got["state"]))
    finally:
        driver.close()
        adc.close()
    assert states == [0, 1, 1, 1, 0, 0, 1]


def test_noise_floor_reads_zero(mock_factory, tmp_path: Path) -> None:
    adc = MockMcp3008(lambda _ch, n: BIAS_V + (LSB_V if n % 2 else 0.0))  # one-LSB jitter
    driver = clamp(tmp_path, noise_floor_a=0.1)
    try:
        got = {s.metric: s.value for s in driver.read()}
    finally:
        driver.close()
        adc.close()
    assert got["current"] == 0.0 and got["power"] == 0.0


def test_corrupt_state_file_is_set_aside(mock_factory, tmp_path: Path) -> None:
    (tmp_path / "laser.energy.json").write_text("{not json")
    driver = clamp(tmp_path)
    assert driver.meter.energy_wh == 0.0
    assert (tmp_path / "laser.energy.json.corrupt").exists()


def test_hysteresis_thresholds_must_be_ordered(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sensor 'laser' \(current_clamp\).*idle_below_w"):
        clamp(tmp_path, running_above_w=10, idle_below_w=20)
