"""docs/configuration.md stays true: its example files load and their sensors build."""

import os
import re
from pathlib import Path

import pytest

from edge.config import load_edge_settings
from edge.drivers.base import create_driver
from hub.config import load_hub_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FABCITY_"):
            monkeypatch.delenv(key)


def test_example_edge_toml_loads_and_its_drivers_accept_their_options(tmp_path: Path) -> None:
    (edge,) = [b for b in TOML_BLOCKS if "[[sensors]]" in b]
    path = tmp_path / "edge.toml"
    path.write_text(edge)
    settings = load_edge_settings(path)
    assert settings.location is not None and settings.kind == "machine"
    drivers = [create_driver(sensor) for sensor in settings.sensors]
    assert [d.name for d in drivers] == ["air", "laser"]


def test_example_hub_toml_loads(tmp_path: Path) -> None:
    (hub,) = [b for b in TOML_BLOCKS if "[storage]" in b]
    path = tmp_path / "hub.toml"
    path.write_text(hub)
    settings = load_hub_settings(path)
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.resolved_registry_path() == Path("/var/lib/fabcity/hub-registry.db")


def test_documented_defaults_match_the_code() -> None:
    settings = load_hub_settings(None)
    assert settings.ingest.max_age_s == 34_560_000
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8000)
    assert settings.mqtt.url is None and settings.mqtt.client_id == "fabcity-hub"


OPERATIONS = DOC.with_name("operations.md")


@pytest.mark.parametrize("block", [b for b in re.findall(r"```toml\n(.*?)```",
                                                         OPERATIONS.read_text(), re.S)
                                   if "[storage]" in b])
def test_storage_examples_in_operations_md_load(block: str, tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(block)
    settings = load_hub_settings(path)
    assert settings.storage.backend in block
    settings.storage.options()
