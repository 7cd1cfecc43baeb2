"""SDS011 on a pty against a simulated sensor writing datasheet frames."""

import time

import pytest

from edge.config import SensorConfig
from edge.drivers import create_driver
from edge.drivers.sds011 import Sds011Driver, command
from fabcity.errors import ConfigError, DriverError
from tests.edge.drivers.serial_sim import Sds011Sim, wait_until

QUERY_MODE = bytes.fromhex("aa b4 02 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 02 ab")
WORK = bytes.fromhex("aa b4 06 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 06 ab")
SLEEP = bytes.fromhex("aa b4 06 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 05 ab")
QUERY = bytes.fromhex("aa b4 04 00 00 00 00 00 00 00 00 00 00 00 00 ff ff 02 ab")


def make(port: str, **options: object) -> Sds011Driver:
    config = SensorConfig(driver="sds011", name="dust", port=port, interval_s=60, **options)
    driver = create_driver(config)
    assert isinstance(driver, Sds011Driver)
    driver.options.timeout_s = min(driver.options.timeout_s, 1.0)
    return driver


def values(samples: list) -> dict[str, float]:
    return {s.metric: s.value for s in samples}


def test_commands_are_the_datasheet_bytes() -> None:
    assert command(0x02, 1, 1) == QUERY_MODE
    assert command(0x06, 1, 1) == WORK
    assert command(0x06, 1, 0) == SLEEP
    assert command(0x04) == QUERY


def test_query_mode_wakes_sets_mode_and_reads(plug) -> None:
    sim = Sds011Sim(pm2_5=12.3, pm10=45.6)
    device = plug(sim)
    driver = make(str(device.path))
    try:
        assert values(driver.read()) == {"pm2_5": 12.3, "pm10": 45.6}
        sim.pm2_5 = 999.9
        assert values(driver.read())["pm2_5"] == 999.9
    finally:
        driver.close()
    assert sim.commands[:3] == [WORK, QUERY_MODE, QUERY]
    assert not sim.active


def test_garbage_corrupted_split_and_interleaved_frames_are_survived(plug) -> None:
    sim = Sds011Sim(pm2_5=7.0, pm10=9.5)
    device = plug(sim)
    driver = make(str(device.path))
    good = sim.data_frame()
    bad = bytearray(good)
    bad[8] ^= 0xFF  # checksum broken
    interleaved = sim.reply(0x06, 1, 1)
    try:
        driver.open()
        time.sleep(0.1)
        # garbage, a corrupted frame, a stray header, a command reply, then the frame in 3 parts
        sim.shaper = lambda frame: [b"\x00\x13\xaa\xff" + bytes(bad) + b"\xaa" + interleaved
                                    + frame[:3], frame[3:7], frame[7:]]
        assert values(driver.read()) == {"pm2_5": 7.0, "pm10": 9.5}
        assert driver.scanner.bad_frames >= 2
        assert driver.scanner.skipped_bytes > 0
    finally:
        driver.close()


def test_active_mode_reports_the_newest_frame(plug) -> None:
    sim = Sds011Sim(pm2_5=1.0, pm10=2.0)
    device = plug(sim)
    driver = make(str(device.path), mode="active")
    try:
        driver.open()
        time.sleep(0.3)  # several frames queue up
        sim.pm2_5 = 3.4
        sent = sim.streamed
        assert wait_until(lambda: sim.streamed >= sent + 2)
        assert values(driver.read())["pm2_5"] == 3.4
    finally:
        driver.close()
    assert sim.active
    assert QUERY not in sim.commands


def test_duty_cycle_sleeps_between_reads_and_warms_up(plug) -> None:
    sim = Sds011Sim()
    device = plug(sim)
    driver = make(str(device.path), duty_cycle=True, warmup_s=0.2)
    waits: list[float] = []
    driver.wait = lambda s: (waits.append(s), time.sleep(s))  # type: ignore[func-returns-value]
    try:
        driver.read()
        assert wait_until(lambda: not sim.working)
        driver.read()
        assert wait_until(lambda: len(sim.commands) == 7)
    finally:
        driver.close()
    assert len(waits) == 2 and waits[1] == pytest.approx(0.2, abs=0.01)
    assert sim.commands == [WORK, QUERY_MODE, QUERY, SLEEP, WORK, QUERY, SLEEP]


def test_unplugged_port_raises_then_recovers_when_replugged(plug) -> None:
    sim = Sds011Sim(pm2_5=5.5)
    device = plug(sim)
    driver = make(str(device.path))
    try:
        assert values(driver.read())["pm2_5"] == 5.5
        device.unplug()
        with pytest.raises(DriverError):
            driver.read()
        with pytest.raises(DriverError, match="cannot open"):
            driver.read()
        sim.pm2_5 = 6.6
        device.plug()
        assert values(driver.read())["pm2_5"] == 6.6
    finally:
        driver.close()
    assert sim.commands.count(WORK) == 2  # reconfigured after the replug


def test_silent_sensor_times_out_and_is_reconfigured(plug) -> None:
    sim = Sds011Sim()
    device = plug(sim)
    driver = make(str(device.path))
    driver.options.timeout_s = 0.3
    try:
        driver.open()
        sim.silent = True
        with pytest.raises(DriverError, match=r"no valid frame within 0\.3 s"):
            driver.read()
        sim.silent = False
        assert values(driver.read())["pm10"] == 45.6
    finally:
        driver.close()


def test_duty_cycle_needs_an_interval_longer_than_warmup() -> None:
    config = SensorConfig(driver="sds011", name="dust", port="/dev/null", interval_s=20,
                          duty_cycle=True)
    with pytest.raises(ConfigError, match=r"sensor 'dust' \(sds011\): interval_s"):
        create_driver(config)


def test_missing_port_and_bad_mode_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"sensor 'dust' \(sds011\): port: Field required"):
        create_driver(SensorConfig(driver="sds011", name="dust"))
    with pytest.raises(ConfigError, match=r"'dust' \(sds011\): mode:"):
        create_driver(SensorConfig(driver="sds011", name="dust", port="/x", mode="fast"))
