"""MH-Z19B on a pty against a simulated sensor writing datasheet frames."""

import time

import pytest

from edge.config import SensorConfig
from edge.drivers import create_driver
from edge.drivers.mhz19 import Mhz19Driver, checksum, command
from fabcity.errors import ConfigError, DriverError
from tests.edge.drivers.serial_sim import Mhz19Sim, wait_until

READ = bytes.fromhex("ff 01 86 00 00 00 00 00 79")
ABC_ON = bytes.fromhex("ff 01 79 a0 00 00 00 00 e6")
ABC_OFF = bytes.fromhex("ff 01 79 00 00 00 00 00 86")
RANGE_5000 = bytes.fromhex("ff 01 99 00 00 00 13 88 cb")


def make(port: str, **options: object) -> Mhz19Driver:
    config = SensorConfig(driver="mhz19", name="co2", port=port, interval_s=10, **options)
    driver = create_driver(config)
    assert isinstance(driver, Mhz19Driver)
    driver.options.timeout_s = 1.0
    return driver


def test_commands_and_checksum_follow_the_datasheet() -> None:
    assert command(0x86) == READ
    assert command(0x79, b"\xa0") == ABC_ON
    assert command(0x79, b"\x00") == ABC_OFF
    assert command(0x99, b"\x00\x00\x00\x13\x88") == RANGE_5000
    assert checksum(bytes.fromhex("ff 86 02 60 47 00 00 00 d1")) == 0xD1


def test_reads_co2_and_sets_abc_and_range(plug) -> None:
    sim = Mhz19Sim(co2_ppm=612)
    device = plug(sim)
    driver = make(str(device.path), abc=False, range_ppm=5000, preheat_s=0)
    try:
        (sample,) = driver.read()
    finally:
        driver.close()
    assert (sample.metric, sample.value, sample.flags) == ("co2", 612, ())
    assert sim.commands == [ABC_OFF, RANGE_5000, READ]
    assert sim.abc is False and sim.range_ppm == 5000


def test_readings_during_preheat_are_flagged(plug) -> None:
    device = plug(Mhz19Sim())
    driver = make(str(device.path))
    try:
        (sample,) = driver.read()
    finally:
        driver.close()
    assert sample.flags == ("warming_up",)


def test_garbage_and_a_bad_checksum_are_skipped(plug) -> None:
    sim = Mhz19Sim(co2_ppm=1234)
    device = plug(sim)
    driver = make(str(device.path), preheat_s=0)
    stale = sim.frame(0x86, (9999).to_bytes(2, "big"))
    broken = stale[:8] + bytes([stale[8] ^ 1])
    try:
        driver.open()
        time.sleep(0.1)
        sim.shaper = lambda frame: [b"\xff\xff\x00" + broken + frame[:2], frame[2:]]
        (sample,) = driver.read()
        assert sample.value == 1234
        assert driver.scanner.bad_frames >= 1
    finally:
        driver.close()


def test_unplug_and_replug_reconfigures_abc(plug) -> None:
    sim = Mhz19Sim(co2_ppm=500)
    device = plug(sim)
    driver = make(str(device.path))
    try:
        driver.read()
        device.unplug()
        with pytest.raises(DriverError):
            driver.read()
        sim.co2_ppm = 800
        device.plug()
        assert driver.read()[0].value == 800
    finally:
        driver.close()
    assert wait_until(lambda: sim.commands.count(ABC_ON) == 2)


def test_bad_range_names_the_sensor_and_field() -> None:
    with pytest.raises(ConfigError, match=r"sensor 'co2' \(mhz19\): range_ppm"):
        create_driver(SensorConfig(driver="mhz19", name="co2", port="/x", range_ppm=3000))
