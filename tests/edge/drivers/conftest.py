"""Fixtures of driver tests: gpiozero mock pins and simulated serial devices."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from tests.edge.drivers.serial_sim import Protocol, PtyDevice


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """gpiozero's pin factory swapped for mock pins the test drives."""
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def plug(tmp_path: Path) -> Iterator[object]:
    """``plug(protocol)`` puts a simulated device at a path; unplugged after the test."""
    devices: list[PtyDevice] = []

    def _plug(protocol: Protocol) -> PtyDevice:
        device = PtyDevice(tmp_path / f"ttyUSB{len(devices)}", protocol)
        device.plug()
        devices.append(device)
        return device

    yield _plug
    for device in devices:
        if device.path.is_symlink():
            device.unplug()
