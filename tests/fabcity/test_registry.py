"""Plugin registry: entry points by group, unknown names listed."""

import pytest

from edge.drivers.simulated import SimulatedDriver
from fabcity import registry
from fabcity.errors import ConfigError


def test_installed_drivers_are_listed_sorted() -> None:
    names = registry.available("fabcity.drivers")
    assert "simulated" in names
    assert names == sorted(names)


def test_load_returns_the_registered_object() -> None:
    assert registry.load("fabcity.drivers", "simulated") is SimulatedDriver


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown driver 'nosuch': known are .*simulated"):
        registry.load("fabcity.drivers", "nosuch")


def test_empty_group() -> None:
    assert registry.available("fabcity.nothing") == []
    with pytest.raises(ConfigError, match="known are none"):
        registry.load("fabcity.nothing", "x")
