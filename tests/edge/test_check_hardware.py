"""``fabcity edge check`` on real drivers: each sensor shows its value or its error."""

from pathlib import Path

import pytest

from fabcity.cli import main
from tests.edge.drivers.serial_sim import PtyDevice, Sds011Sim

W1_SLAVE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"


def test_check_shows_values_calibration_and_errors(tmp_path: Path, capsys) -> None:
    dust = PtyDevice(tmp_path / "ttyUSB0", Sds011Sim(pm2_5=12.3, pm10=45.6))
    dust.plug()
    w1 = tmp_path / "w1" / "28-0316a2795bff"
    w1.mkdir(parents=True)
    (w1 / "w1_slave").write_text(W1_SLAVE)
    config = tmp_path / "edge.toml"
    config.write_text(f"""
site = "fablab"
device = "pi1"

[[sensors]]
driver = "sds011"
name = "dust"
port = "{dust.path}"
calibration.pm2_5 = {{ scale = 2.0 }}

[[sensors]]
driver = "ds18b20"
name = "water"
devices_dir = "{w1.parent}"

[[sensors]]
driver = "mhz19"
name = "co2"
port = "{tmp_path / 'ttyUSB9'}"
""")
    try:
        code = main(["edge", "check", "-c", str(config)])
    finally:
        dust.unplug()
    out, err = capsys.readouterr()
    assert code == 1
    lines = {tuple(line.split()[:3]) for line in out.splitlines()}
    assert ("dust", "pm2_5", "24.6") in lines  # calibrated
    assert ("dust", "pm10", "45.6") in lines
    assert ("water", "temperature", "23.125") in lines
    assert "sensor 'co2' (mhz19): error:" in err and "ttyUSB9" in err


def test_bad_option_is_a_precise_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('site = "a"\ndevice = "b"\n[[sensors]]\ndriver = "sds011"\n'
                      'name = "dust"\nport = "/dev/null"\nmode = "turbo"\n')
    assert main(["edge", "check", "-c", str(config)]) == 1
    _, err = capsys.readouterr()
    assert "sensor 'dust' (sds011): error: mode: Input should be 'query' or 'active'" in err
    assert err.count("sensor 'dust'") == 1  # named once, not twice
    assert "Traceback" not in err


@pytest.mark.parametrize(("driver", "listed"), [
    ("door", "door_open [bool]"), ("button", "button [bool]"), ("motion", "motion [bool]"),
    ("light", "light [lx]"), ("cpu_temperature", "temperature [degC]"),
    ("mcp3008", "voltage [V]"), ("current_clamp", "energy [Wh]"),
    ("ds18b20", "temperature [degC]"), ("sds011", "pm2_5 [ug/m3]"),
    ("pms5003", "pm1 [ug/m3]"), ("mhz19", "co2 [ppm]"),
])
def test_drivers_lists_metrics_units_and_options(driver: str, listed: str, capsys) -> None:
    assert main(["edge", "drivers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{driver}: "))
    assert lines[start + 1].strip().startswith("metrics:") and listed in lines[start + 1]
    assert any(":" in line and "(" in line for line in lines[start + 2 : start + 4])


def test_check_ends_with_whether_the_broker_takes_this_agent(
        tmp_path: Path, capsys, mosquitto) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "edge.toml"
    body = ('site = "a"\ndevice = "b"\n[mqtt]\nurl = "{url}"\n[[sensors]]\n'
            'driver = "simulated"\nname = "seq"\nprofile = "sequence"\n')
    config.write_text(body.format(url=mosquitto.url))
    assert main(["edge", "check", "-c", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (f"broker {mosquitto.url}: ok: the broker "
                       f"{mosquitto.url} accepted this client")
    mosquitto.stop()
    assert main(["edge", "check", "-c", str(config)]) == 1
    assert "FAILED: connection refused" in capsys.readouterr().err
