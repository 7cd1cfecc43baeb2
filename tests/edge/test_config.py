"""edge.toml: required keys, name rules, unique sensors, driver options kept aside."""

import os
from pathlib import Path

import pytest

from edge.config import EdgeSettings, load_edge_settings
from fabcity.errors import ConfigError

GOOD = """
site = "fablab-bcn"
device = "pi-laser"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[buffer]
path = "/var/lib/fabcity/edge-buffer.db"
[[sensors]]
driver = "simulated"
name = "air"
interval_s = 5
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FABCITY_"):
            monkeypatch.delenv(key)


def load(tmp_path: Path, text: str) -> EdgeSettings:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return load_edge_settings(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    return str(err.value)


def test_the_documented_example_loads_with_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, GOOD)
    assert (settings.site, settings.device, settings.kind) == ("fablab-bcn", "pi-laser",
                                                               "environment")
    assert settings.buffer.path == Path("/var/lib/fabcity/edge-buffer.db")
    assert settings.buffer.max_readings == 1_000_000 and settings.buffer.synchronous == "full"
    assert (settings.publish.batch_size, settings.publish.max_inflight) == (50, 100)
    assert settings.mqtt.keepalive_s == 30 and settings.mqtt.client_id is None
    (sensor,) = settings.sensors
    assert (sensor.driver, sensor.name, sensor.interval_s) == ("simulated", "air", 5.0)


def test_missing_site_and_device_are_named(tmp_path: Path) -> None:
    message = error(tmp_path, "[[sensors]]\ndriver = 'simulated'\nname = 'air'\n")
    assert f"{tmp_path / 'edge.toml'}: site: Field required" in message
    assert "device: Field required" in message


def test_sensor_without_driver_or_name_is_named_by_index(tmp_path: Path) -> None:
    message = error(tmp_path, GOOD + "[[sensors]]\ninterval_s = 1\n")
    assert "sensors[1].driver: Field required" in message
    assert "sensors[1].name: Field required" in message


@pytest.mark.parametrize("site", ["Fablab", "fablab bcn", "-lab", "lab/1", "lab+", "l" * 65, ""])
def test_bad_site_names_are_refused(tmp_path: Path, site: str) -> None:
    message = error(tmp_path, GOOD.replace('"fablab-bcn"', f'"{site}"'))
    assert ": site: String should match pattern" in message


@pytest.mark.parametrize("name", ["Air", "2air", "air-1", "a" * 65])
def test_bad_sensor_names_are_refused(tmp_path: Path, name: str) -> None:
    message = error(tmp_path, GOOD.replace('name = "air"', f'name = "{name}"'))
    assert "sensors[0].name: String should match pattern" in message


def test_duplicate_sensor_names_are_refused(tmp_path: Path) -> None:
    message = error(tmp_path, GOOD + "[[sensors]]\ndriver = 'sds011'\nname = 'air'\n")
    assert "two sensors are named 'air': names must be unique" in message


def test_driver_specific_keys_are_kept_as_options(tmp_path: Path) -> None:
    settings = load(tmp_path, GOOD + "profile = 'machine'\nseed = 3\nport = '/dev/ttyUSB0'\n")
    sensor = settings.sensors[0]
    assert sensor.options == {"profile": "machine", "seed": 3}
    assert sensor.port == "/dev/ttyUSB0"


@pytest.mark.parametrize(("text", "field"), [
    ('[mqtt]\nurl = "http://x"\n', "mqtt.url"),
    ('[buffer]\nmax_readings = 10\n', "buffer.max_readings"),
    ('[buffer]\nsynchronous = "off"\n', "buffer.synchronous"),
    ('[buffer]\ncommit_interval_s = "soon"\n', "buffer.commit_interval_s"),
    ('[publish]\nbatch_size = 1001\n', "publish.batch_size"),
    ('[publish]\nlinger = 1\n', "publish.linger"),
    ('[location]\nlat = 95\nlon = 0\n', "location.lat"),
    ('kind = "robot"\n', "kind"),
])
def test_section_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    base = 'site = "lab"\ndevice = "pi"\n'
    assert f": {field}: " in error(tmp_path, base + text)


def test_commit_interval_defaults_to_one_second_and_zero_is_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, GOOD).buffer.commit_interval_s == 1.0
    zero = GOOD.replace("[buffer]\n", "[buffer]\ncommit_interval_s = 0\n")
    assert load(tmp_path, zero).buffer.commit_interval_s == 0


def test_negative_commit_interval_is_refused_with_the_rule(tmp_path: Path) -> None:
    message = error(tmp_path, 'site = "lab"\ndevice = "pi"\n[buffer]\ncommit_interval_s = -1\n')
    assert f"{tmp_path / 'edge.toml'}: buffer.commit_interval_s: " in message
    assert "greater than or equal to 0" in message


def test_environment_overrides_the_broker(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABCITY_MQTT__URL", "mqtts://broker.example.org:8883")
    monkeypatch.setenv("FABCITY_MQTT__PASSWORD", "s3cret")
    settings = load(tmp_path, GOOD)
    assert settings.mqtt.url == "mqtts://broker.example.org:8883"
    assert settings.mqtt.password == "s3cret"
    assert settings.sensors[0].name == "air"


def test_password_file_is_read_at_start(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt.secret"
    secret.write_text("s3cret\n")
    settings = load(tmp_path, 'site = "lab"\ndevice = "pi-1"\n[mqtt]\nusername = "lab.pi-1"\n'
                              f'password_file = "{secret}"\n')
    assert settings.mqtt.password == "s3cret"


@pytest.mark.parametrize(("content", "rule"), [(None, "cannot read"), ("\n", "is empty")])
def test_unreadable_password_file_names_the_key(tmp_path: Path, content: str | None,
                                                rule: str) -> None:
    secret = tmp_path / "mqtt.secret"
    if content is not None:
        secret.write_text(content)
    message = error(tmp_path, f'site = "lab"\ndevice = "pi-1"\n[mqtt]\n'
                              f'password_file = "{secret}"\n')
    assert "mqtt.password_file" in message and rule in message and str(secret) in message


def test_password_and_password_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt.secret"
    secret.write_text("s3cret\n")
    message = error(tmp_path, f'site = "lab"\ndevice = "pi-1"\n[mqtt]\npassword = "x"\n'
                              f'password_file = "{secret}"\n')
    assert "password or password_file, not both" in message
