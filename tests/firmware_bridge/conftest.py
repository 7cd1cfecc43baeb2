"""Fixtures of the bridge tests: a compiled C device and virtual serial ports."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_bridge.simulator import VirtualPort
from tests.firmware_bridge.helpers import build_c_simulator


@pytest.fixture(scope="session")
def c_simulator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C module and its host program, compiled once with the host's gcc."""
    return build_c_simulator(tmp_path_factory.mktemp("c-sim"))


@pytest.fixture
def virtual_port(tmp_path: Path) -> Iterator[VirtualPort]:
    """A pty pair reachable at ``tmp_path / "ttyACM0"``, unplugged after the test."""
    port = VirtualPort(tmp_path / "ttyACM0")
    yield port
    port.unplug()
