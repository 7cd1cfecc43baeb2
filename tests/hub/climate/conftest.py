"""A fresh SQLite storage per test, and helpers to write readings at RFC 3339 times."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from fabcity.reading import Reading, parse_ts
from hub.storage.base import Storage
from tests.hub.storage.backends import open_sqlite


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Storage]:
    s = open_sqlite(tmp_path, "climate")
    yield s
    s.close()


def at(text: str) -> int:
    """``"2026-03-01T10:00"`` (UTC) -> epoch ms."""
    return parse_ts(text + ":00Z" if text.count(":") == 1 else text + "Z")


def put(storage: Storage, metric: str, points: list[tuple[str, float]], *,
        site: str = "fablab-bcn", device: str = "pi-laser", sensor: str = "meter") -> None:
    """Store ``(time, value)`` readings of one series (canonical unit of ``metric``)."""
    units = {"energy": "Wh", "power": "W", "state": "bool", "gas_volume": "m3",
             "fuel_energy": "kWh"}
    storage.write([Reading(site, device, sensor, metric, value, at(ts), units.get(metric))
                   for ts, value in points])
