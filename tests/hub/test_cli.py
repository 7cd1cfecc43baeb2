"""``fabcity hub`` and ``fabcity demo`` refuse bad options with a message, not a traceback."""

import json
from pathlib import Path

import pytest

from fabcity.cli import main
from fabcity.reading import Reading
from hub.deadletters import DeadLetters
from hub.storage.sqlite import SqliteStorage


@pytest.mark.parametrize(("argv", "message"), [
    (["hub", "serve", "--port", "99999"],
     "command line: --port: api.port: Input should be less than or equal to 65535"),
    (["demo", "--port", "-1"], "command line: --port: api.port: Input should be greater"),
    (["demo", "--mqtt-url", "http://broker"], "command line: --mqtt-url: mqtt.url: String should"),
])
def test_bad_options_name_the_option_and_the_rule(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_environment_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FABCITY_API__PORT", "eighty")
    assert main(["hub", "serve"]) == 2
    assert "environment: FABCITY_API__PORT: api.port: Input should be a valid integer" in (
        capsys.readouterr().err)


def test_demo_interval_must_be_sensible(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--interval", "0"])
    assert exit_info.value.code == 2
    assert "0 s is outside 0.05..3600 s" in capsys.readouterr().err


def test_port_in_use_says_how_to_pick_another(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--port", str(port), "--data-dir", "/tmp/unused"]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert "--port 8080" in err


@pytest.mark.parametrize(("toml", "message"), [
    ('[storage]\nbackend = "influx"\n',
     "storage.backend: unknown storage back-end 'influx': known are influxdb, influxdb1, sqlite"),
    ('[storage]\nbackend = "influxdb1"\ndatabse = "x"\n',
     "storage.databse: unknown key (check its spelling and section)"),
    ('[storage]\nbackend = "influxdb"\nurl = "http://db:8086"\n',
     "storage.bucket: Field required"),
    ('[storage]\nbackend = "sqlite"\nretention_raw = "90 days"\n',
     "storage.retention_raw: String should match pattern"),
    ('[[sites]]\nid = "lab"\nname = "Lab"\nlat = 41.4\n',
     "sites[0]: Value error, give both lat and lon, or neither"),
    ('[[sites]]\nid = "lab"\nname = "Lab"\n[[sites]]\nid = "lab"\nname = "Again"\n',
     "sites: Value error, id 'lab' is declared twice"),
    ('[[sites]]\nid = "Fab Lab"\nname = "Lab"\n', "sites[0].id: String should match pattern"),
])
def test_storage_options_are_checked_by_their_back_end_naming_the_key(
    toml: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(toml)
    assert main(["hub", "serve", "--config", str(config)]) == 2
    assert f"{config}: {message}" in capsys.readouterr().err


def test_dead_letters_list_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[storage]\npath = "{tmp_path / "hub.db"}"\n')
    letters = DeadLetters(tmp_path / "fabcity-hub-state.db")
    refused = Reading("lab", "pi-1", "clamp", "power", 12.5, 1_794_960_000_000, "W")
    letters.add([(refused, "partial write: points beyond retention policy dropped=1")])
    letters.close()
    assert main(["hub", "dead-letters", "list", "--config", str(config), "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) | {"id": 0, "at": ""} == {
        "id": 0, "at": "", "reason": "partial write: points beyond retention policy dropped=1",
        "site": "lab", "device": "pi-1", "sensor": "clamp", "metric": "power",
        "ts": "2026-11-18T00:00:00.000Z", "value": 12.5, "unit": "W", "flags": []}
    assert main(["hub", "dead-letters", "replay", "--config", str(config)]) == 0
    assert "1 stored, 0 refused again" in capsys.readouterr().out
    storage = SqliteStorage(tmp_path / "hub.db")
    assert storage.latest() == [refused]
    storage.close()
    assert main(["hub", "dead-letters", "list", "--config", str(config)]) == 0
    assert "0 dead letter(s)" in capsys.readouterr().err
