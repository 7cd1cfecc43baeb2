"""The ``firmware`` driver: every channel a device announces becomes a metric."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import SensorConfig
from edge.drivers.base import Sample, create_driver
from edge.drivers.firmware import FirmwareDriver, metric_names
from edge.sampler import Sampler
from fabcity.errors import ConfigError, DriverError
from fabcity.reading import Reading, now_ms
from firmware_bridge.frame import encode_frame
from firmware_bridge.messages import Channel
from firmware_bridge.simulator import SimulatedFirmware, VirtualPort
from tests.firmware_bridge.helpers import wait_until


@pytest.fixture
def port(tmp_path: Path) -> Iterator[VirtualPort]:
    virtual = VirtualPort(tmp_path / "ttyACM0")
    yield virtual
    virtual.unplug()


@pytest.fixture
def device(port: VirtualPort) -> Iterator[SimulatedFirmware]:
    firmware = SimulatedFirmware(port.fd, interval_ms=1000).start()
    yield firmware
    firmware.stop()


def make_driver(port: VirtualPort, **options: object) -> FirmwareDriver:
    config = SensorConfig(driver="firmware", name="bench", port=str(port.path), interval_s=0.05,
                          reconnect_interval_s=0.05, **options)
    driver = create_driver(config)
    assert isinstance(driver, FirmwareDriver)
    return driver


def test_metrics_come_from_the_hello_without_configuration(
    device: SimulatedFirmware, port: VirtualPort
) -> None:
    driver = make_driver(port)
    try:
        driver.open()
        assert driver.metrics() == {"a0_voltage": "V", "a1_voltage": "V", "temperature": "degC"}
    finally:
        driver.close()


def test_qualified_names_keep_the_sensor_in_every_metric(
    device: SimulatedFirmware, port: VirtualPort
) -> None:
    driver = make_driver(port, metric_names="qualified")
    try:
        driver.open()
        assert set(driver.metrics()) == {"a0_voltage", "a1_voltage", "ds18b20_temperature"}
    finally:
        driver.close()


def test_metric_names_only_qualify_shared_metrics() -> None:
    channels = (Channel("pms", "pm2_5", "ug/m3"), Channel("sht", "temperature", "degC"),
                Channel("bmp", "temperature", "degC"))
    assert metric_names(channels) == ["pm2_5", "sht_temperature", "bmp_temperature"]


def test_metrics_before_open_handshake_so_the_agent_can_describe_the_device(
    device: SimulatedFirmware, port: VirtualPort
) -> None:
    driver = make_driver(port)
    try:
        assert driver.metrics()["temperature"] == "degC"  # no open() yet
        driver.open()  # a no-op now
    finally:
        driver.close()


def test_samples_carry_device_timestamps_and_become_valid_readings(
    device: SimulatedFirmware, port: VirtualPort
) -> None:
    samples: list[Sample] = []
    driver = make_driver(port)
    before = now_ms()
    try:
        driver.open()
        driver.start(samples.extend)
        wait_until(lambda: device.interval_ms == 100, what="the sensor's interval on the device")
        wait_until(lambda: len(samples) >= 6, what="two frames of samples")
    finally:
        driver.close()
    assert {s.metric for s in samples} == {"a0_voltage", "a1_voltage", "temperature"}
    assert all(s.ts_ms is not None and before - 50 <= s.ts_ms <= now_ms() for s in samples)
    units = driver.metrics()
    readings = [Reading("fablab", "pi-1", driver.name, s.metric, s.value, s.ts_ms or 0,
                        units[s.metric]) for s in samples]
    assert readings[0].sensor == "bench" and readings[0].unit in ("V", "degC")


def test_sampler_stores_readings_from_the_device(
    device: SimulatedFirmware, port: VirtualPort
) -> None:
    stored: list[Reading] = []
    sampler = Sampler("fablab", "pi-1", stored.extend)
    driver = make_driver(port)
    stats = sampler.add(driver, 0.1)
    sampler.start()
    try:
        wait_until(lambda: len(stored) >= 9, what="readings through the sampler")
    finally:
        sampler.stop()
    assert stats.rejected == 0
    temperatures = [r for r in stored if r.metric == "temperature"]
    assert temperatures and all(r.unit == "degC" and 21 < r.value < 60 for r in temperatures)


def test_readings_resume_after_unplug_and_replug(
    port: VirtualPort, caplog: pytest.LogCaptureFixture
) -> None:
    samples: list[Sample] = []
    first = SimulatedFirmware(port.fd, interval_ms=20).start()
    driver = make_driver(port)
    second = None
    try:
        driver.open()
        driver.start(samples.extend)
        wait_until(lambda: samples, what="samples before the unplug")
        with caplog.at_level(logging.WARNING):
            first.stop()
            port.unplug()
            wait_until(lambda: any(r.levelno == logging.WARNING and "ttyACM0:" in r.getMessage()
                                   for r in caplog.records), what="a warning about the unplug")
        second = SimulatedFirmware(port.plug(), interval_ms=20).start()
        count = len(samples)
        wait_until(lambda: len(samples) >= count + 6, what="samples after the replug")
    finally:
        driver.close()
        if second is not None:
            second.stop()


def test_absent_device_fails_open_with_a_driver_error(tmp_path: Path) -> None:
    config = SensorConfig(driver="firmware", name="bench", port=str(tmp_path / "ttyACM9"))
    driver = create_driver(config)
    with pytest.raises(DriverError, match="ttyACM9: no such device"):
        driver.open()
    assert driver.metrics() == {}


@pytest.mark.parametrize(("options", "message"), [
    ({}, "port"),
    ({"port": "/dev/ttyACM0", "channels": ["a0"]}, "channels"),
    ({"port": "/dev/ttyACM0", "metric_names": "short"}, "metric_names"),
])
def test_bad_options_name_the_sensor_and_field(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        create_driver(SensorConfig(driver="firmware", name="bench", **options))
    assert "bench" in str(caught.value)


def test_frames_of_an_unknown_kind_cost_no_readings_and_no_lost_count(
    device: SimulatedFirmware, port: VirtualPort
) -> None:
    samples: list[Sample] = []
    driver = make_driver(port)
    try:
        driver.open()
        driver.start(samples.extend)
        wait_until(lambda: device.interval_ms == 100, what="the sensor's interval on the device")
        wait_until(lambda: samples, what="first samples")
        device.send(lambda seq, t: encode_frame(seq, "STAT", {"t": t, "heap": 2048}))
        count = len(samples)
        wait_until(lambda: len(samples) >= count + 6, what="samples after the STAT frame")
        stats = driver.session.stats
    finally:
        driver.close()
    assert stats.unknown_kinds == 1
    assert (stats.lost_frames, stats.gaps) == (0, 0)
