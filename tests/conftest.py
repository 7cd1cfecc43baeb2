"""Fixtures shared by every test package."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import InfluxDB1, Mosquitto, VictoriaMetrics


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free port with the project's configuration."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """A real InfluxDB 1.x for the whole run; tests use databases of their own."""
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb1")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """A real VictoriaMetrics for the whole run (the InfluxDB v2 write API)."""
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria-metrics")).start()
    yield server
    server.stop()
