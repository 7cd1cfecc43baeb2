"""Plugins: entry points by group, unknown names listed."""

import pytest

from edge.drivers.simulated import SimulatedDriver
from fabcity import plugins
from fabcity.errors import ConfigError


def test_installed_drivers_are_listed_sorted() -> None:
    names = plugins.available("fabcity.drivers")
    assert "simulated" in names
    assert names == sorted(names)


def test_load_returns_the_registered_object() -> None:
    assert plugins.load("fabcity.drivers", "simulated") is SimulatedDriver


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown driver 'nosuch': known are .*simulated"):
        plugins.load("fabcity.drivers", "nosuch")


def test_empty_group() -> None:
    assert plugins.available("fabcity.nothing") == []
    with pytest.raises(ConfigError, match="known are none"):
        plugins.load("fabcity.nothing", "x")
