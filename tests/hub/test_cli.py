"""``fabcity hub`` and ``fabcity demo`` refuse bad options with a message, not a traceback."""

import pytest

from fabcity.cli import main


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
