"""Configuration loading: TOML file, ``FABCITY_…`` overrides, errors that name file and field."""

import os
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from edge.config import EdgeSettings
from fabcity.config import FileSettings, load_settings, read_toml
from fabcity.errors import ConfigError


class Server(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "mqtt://127.0.0.1:1883"
    port: int = Field(8000, ge=1)


class Item(BaseModel):
    name: str
    interval_s: float = Field(5.0, gt=0)


class Settings(FileSettings):
    site: str = "lab"
    mqtt: Server = Server()
    sensors: list[Item] = []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FABCITY_"):
            monkeypatch.delenv(key)


def test_file_values_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, 'site = "bcn"\n[mqtt]\nport = 9000\n[[sensors]]\nname = "air"\n')
    settings = load_settings(Settings, path)
    assert settings.site == "bcn"
    assert settings.mqtt == Server(port=9000)
    assert settings.sensors == [Item(name="air")]


def test_no_file_means_defaults() -> None:
    assert load_settings(Settings, None) == Settings()


def test_environment_overrides_win_over_the_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, 'site = "bcn"\n[mqtt]\nurl = "mqtt://file:1883"\nport = 9000\n')
    monkeypatch.setenv("FABCITY_MQTT__URL", "mqtts://env:8883")
    monkeypatch.setenv("FABCITY_SITE", "env-site")
    settings = load_settings(Settings, path)
    assert settings.mqtt.url == "mqtts://env:8883"
    assert settings.mqtt.port == 9000  # the rest of the section still comes from the file
    assert settings.site == "env-site"


def test_environment_names_are_case_insensitive_and_values_are_validated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("fabcity_mqtt__port", "7000")
    assert load_settings(Settings, None).mqtt.port == 7000
    monkeypatch.setenv("FABCITY_MQTT__PORT", "zero")
    with pytest.raises(ConfigError, match=r"mqtt\.port: Input should be a valid integer"):
        load_settings(Settings, write(tmp_path, ""))


def test_a_whole_list_can_come_from_the_environment_as_json(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABCITY_SENSORS", '[{"name": "a", "interval_s": 2}]')
    assert load_settings(Settings, None).sensors == [Item(name="a", interval_s=2)]


def test_malformed_json_in_the_environment_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABCITY_SENSORS", "[{name: a}]")
    with pytest.raises(ConfigError, match=r"environment: .*\"sensors\".* must hold JSON"):
        load_settings(Settings, None)


def test_errors_name_the_file_and_the_field_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sensors]]\nname = "a"\n[[sensors]]\nname = "b"\ninterval_s = 0\n')
    with pytest.raises(ConfigError) as err:
        load_settings(Settings, path)
    assert str(err.value) == f"{path}: sensors[1].interval_s: Input should be greater than 0"


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'site = 5\n[mqtt]\nport = -1\n[[sensors]]\ninterval_s = 1\n')
    with pytest.raises(ConfigError) as err:
        load_settings(Settings, path)
    lines = str(err.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["site", "mqtt.port", "sensors[0].name"]
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_unknown_keys_are_refused_with_their_path(tmp_path: Path) -> None:
    path = write(tmp_path, 'sitee = "x"\n[mqtt]\nuri = "mqtt://h"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(Settings, path)
    message = str(err.value)
    assert f"{path}: sitee: unknown key (check its spelling and section)" in message
    assert f"{path}: mqtt.uri: unknown key" in message


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'site = "bcn"\nsite = "again"\n')
    with pytest.raises(ConfigError, match=rf"^{path}: invalid TOML: .*line 2"):
        read_toml(path)
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(Settings, write(tmp_path, "[mqtt\n"))


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        load_settings(Settings, tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        read_toml(tmp_path)  # a directory


def test_edge_settings_report_sensor_fields_by_index(tmp_path: Path) -> None:
    path = write(tmp_path, 'site = "lab"\ndevice = "pi"\n'
                           '[[sensors]]\ndriver = "simulated"\nname = "air"\ninterval_s = -5\n')
    with pytest.raises(ConfigError) as err:
        load_settings(EdgeSettings, path)
    assert str(err.value) == f"{path}: sensors[0].interval_s: Input should be greater than 0"
