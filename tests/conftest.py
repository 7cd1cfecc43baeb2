"""Fixtures shared by every test package."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free port with the project's configuration."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()
