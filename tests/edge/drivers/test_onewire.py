"""DS18B20 read from a directory laid out like the kernel's w1 sysfs."""

from pathlib import Path

import pytest

from edge.config import SensorConfig
from edge.drivers import Sample, create_driver
from edge.drivers.onewire import Ds18b20Driver, crc8, parse_w1_slave
from fabcity.errors import ConfigError, DriverError

ADDRESS = "28-0316a2795bff"
GOOD = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
NEGATIVE = ("5e ff 4b 46 7f ff 0c 10 {crc:02x} : crc={crc:02x} YES\n"
            "5e ff 4b 46 7f ff 0c 10 {crc:02x} t=-10125\n")


def sensor(base: Path, address: str, text: str, name: str = "w1_slave") -> Path:
    folder = base / address
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def driver(base: Path, **options: object) -> Ds18b20Driver:
    made = create_driver(SensorConfig(driver="ds18b20", name="water", devices_dir=str(base),
                                      **options))
    assert isinstance(made, Ds18b20Driver)
    return made


def test_crc8_matches_the_kernel_line() -> None:
    assert crc8(bytes.fromhex("72014b467fff0e10")) == 0x57


def test_reads_the_only_sensor_present(tmp_path: Path) -> None:
    sensor(tmp_path, ADDRESS, GOOD)
    (tmp_path / "w1_bus_master1").mkdir()
    assert driver(tmp_path).read() == [Sample("temperature", 23.125)]


def test_negative_temperatures(tmp_path: Path) -> None:
    crc = crc8(bytes.fromhex("5eff4b467fff0c10"))
    assert parse_w1_slave(NEGATIVE.format(crc=crc)) == -10.125


def test_crc_no_is_rejected(tmp_path: Path) -> None:
    sensor(tmp_path, ADDRESS, GOOD.replace("YES", "NO"))
    with pytest.raises(DriverError, match="CRC check failed"):
        driver(tmp_path).read()


def test_a_scratchpad_that_does_not_match_its_crc_is_rejected() -> None:
    tampered = GOOD.replace("72 01 4b", "73 01 4b")  # kernel says YES, bytes disagree
    with pytest.raises(DriverError, match="CRC mismatch"):
        parse_w1_slave(tampered)


def test_all_zero_scratchpad_and_power_on_reset_are_rejected() -> None:
    zeros = "00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n"
    with pytest.raises(DriverError, match="all zeros"):
        parse_w1_slave(zeros)
    pad = bytes.fromhex("5005 4b467fff0c10".replace(" ", ""))
    crc = crc8(pad)
    hexes = " ".join(f"{b:02x}" for b in pad) + f" {crc:02x}"
    with pytest.raises(DriverError, match="power-on reset"):
        parse_w1_slave(f"{hexes} : crc={crc:02x} YES\n{hexes} t=85000\n")


def test_several_sensors_need_an_address(tmp_path: Path) -> None:
    sensor(tmp_path, ADDRESS, GOOD)
    sensor(tmp_path, "28-000000000001", GOOD.replace("t=23125", "t=19000"))
    with pytest.raises(DriverError, match="set address: 2 DS18B20 found"):
        driver(tmp_path).read()
    assert driver(tmp_path, address=ADDRESS).read()[0].value == 23.125


def test_newer_kernels_temperature_file(tmp_path: Path) -> None:
    sensor(tmp_path, ADDRESS, "21437\n", name="temperature")
    assert driver(tmp_path).read() == [Sample("temperature", 21.437)]


def test_a_sensor_that_drops_off_the_bus(tmp_path: Path) -> None:
    folder = sensor(tmp_path, ADDRESS, GOOD)
    d = driver(tmp_path, address=ADDRESS)
    d.read()
    (folder / "w1_slave").unlink()
    folder.rmdir()
    with pytest.raises(DriverError, match="not found"):
        d.read()
    sensor(tmp_path, ADDRESS, GOOD)
    assert d.read()[0].value == 23.125


def test_bad_address_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sensor 'water' \(ds18b20\): address"):
        driver(tmp_path, address="10-abc")
