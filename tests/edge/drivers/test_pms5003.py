"""PMS5003 on a pty against a simulated sensor writing datasheet frames."""

import time

import pytest

from edge.config import SensorConfig
from edge.drivers import create_driver
from edge.drivers.pms5003 import Pms5003Driver, command, parse_measurement
from fabcity.errors import DriverError
from tests.edge.drivers.serial_sim import Pms5003Sim, wait_until

PASSIVE = bytes.fromhex("42 4d e1 00 00 01 70")
READ = bytes.fromhex("42 4d e2 00 00 01 71")
SLEEP = bytes.fromhex("42 4d e4 00 00 01 73")
WAKE = bytes.fromhex("42 4d e4 00 01 01 74")


def make(port: str, **options: object) -> Pms5003Driver:
    config = SensorConfig(driver="pms5003", name="pm", port=port, interval_s=60, **options)
    driver = create_driver(config)
    assert isinstance(driver, Pms5003Driver)
    driver.options.timeout_s = 1.0
    return driver


def values(samples: list) -> dict[str, float]:
    return {s.metric: s.value for s in samples}


def test_commands_are_the_datasheet_bytes() -> None:
    assert [command(0xE1, 0), command(0xE2), command(0xE4, 0), command(0xE4, 1)] == [
        PASSIVE, READ, SLEEP, WAKE,
    ]


def test_passive_read_reports_atmospheric_values(plug) -> None:
    sim = Pms5003Sim()
    device = plug(sim)
    driver = make(str(device.path))
    try:
        # CF=1 words are 11/22/33; atmospheric 5/8/13 are what a city sensor reports
        assert values(driver.read()) == {"pm1": 5, "pm2_5": 8, "pm10": 13}
    finally:
        driver.close()
    assert sim.commands[:3] == [WAKE, PASSIVE, READ]


def test_particle_counts_are_optional_metrics(plug) -> None:
    device = plug(Pms5003Sim())
    driver = make(str(device.path), particle_counts=True)
    try:
        got = values(driver.read())
    finally:
        driver.close()
    assert got["particles_0_3um"] == 1500 and got["particles_10um"] == 1
    assert set(got) == set(driver.metrics())


def test_corrupted_split_and_interleaved_frames_resynchronise(plug) -> None:
    sim = Pms5003Sim()
    device = plug(sim)
    driver = make(str(device.path))
    good = sim.data_frame()
    corrupt = bytearray(good)
    corrupt[10] ^= 0x40  # a flipped bit: the checksum no longer matches
    bogus_length = b"\x42\x4d\x7f\x7f" + bytes(20)  # a header with an impossible length
    reply = sim.reply(0xE1, 0)
    try:
        driver.open()
        time.sleep(0.1)
        sim.shaper = lambda frame: [b"\x42" + bytes(corrupt[:16]), bytes(corrupt[16:])
                                    + bogus_length + reply + frame[:5], frame[5:20], frame[20:]]
        assert values(driver.read())["pm2_5"] == 8
        assert driver.scanner.bad_frames >= 2
    finally:
        driver.close()


def test_active_mode_reports_the_newest_frame(plug) -> None:
    sim = Pms5003Sim()
    device = plug(sim)
    driver = make(str(device.path), mode="active")
    try:
        driver.open()
        time.sleep(0.3)
        sim.words[4] = 77
        sent = sim.streamed
        assert wait_until(lambda: sim.streamed >= sent + 2)
        assert values(driver.read())["pm2_5"] == 77
    finally:
        driver.close()
    assert READ not in sim.commands


def test_duty_cycle_puts_the_sensor_to_sleep(plug) -> None:
    sim = Pms5003Sim()
    device = plug(sim)
    driver = make(str(device.path), duty_cycle=True, warmup_s=0.05)
    try:
        driver.read()
        assert wait_until(lambda: not sim.working)
        driver.read()
        assert wait_until(lambda: sim.commands[-1] == SLEEP and len(sim.commands) == 7)
    finally:
        driver.close()
    assert sim.commands == [WAKE, PASSIVE, READ, SLEEP, WAKE, READ, SLEEP]


def test_unplug_and_replug(plug) -> None:
    sim = Pms5003Sim()
    device = plug(sim)
    driver = make(str(device.path))
    try:
        driver.read()
        device.unplug()
        for _ in range(2):
            with pytest.raises(DriverError):
                driver.read()
        sim.words[4] = 21
        device.plug()
        assert values(driver.read())["pm2_5"] == 21
    finally:
        driver.close()


def test_parse_measurement_reads_big_endian_words() -> None:
    frame = Pms5003Sim().data_frame()
    assert parse_measurement(frame)[:6] == [11, 22, 33, 5, 8, 13]
