"""The ``fabcity`` command's own errors: the right usage, the right variable."""

import pytest

from fabcity.cli import main


def test_a_misspelt_option_shows_the_usage_of_the_command_meant(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["edge", "check", "--config", "edge.toml", "--jsn"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: fabcity edge check")
    assert "fabcity edge check: error: unrecognized arguments: --jsn" in err


def test_a_section_variable_without_json_says_which_key_was_meant(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FABCITY_MQTT", "notjson")
    assert main(["hub", "serve"]) == 2
    err = capsys.readouterr().err
    assert "FABCITY_MQTT: [mqtt] is a section" in err
    assert "FABCITY_MQTT__URL=" in err
    assert "HubMqttConfig" not in err
