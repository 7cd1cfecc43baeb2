"""The ``store`` fixture: one test, run against every storage back-end and its real server."""

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from fabcity.reading import Reading
from hub.storage.base import MINUTE_MS, Storage
from hub.storage.rollup import RollupState, RollupWorker
from hub.storage.sqlite import SqliteStorage
from tests.hub.storage import backends

BACKENDS = ("sqlite", "influxdb1", "influxdb")
_names = itertools.count()

StoreFactory = Callable[..., Storage]


def open_backend(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A function opening a fresh store of ``backend`` (options as keyword arguments)."""
    def open_store(**options: object) -> Storage:
        name = f"t{next(_names)}"
        if backend == "sqlite":
            return backends.open_sqlite(tmp_path, name, **options)
        if backend == "influxdb1":
            return backends.open_influxdb1(request.getfixturevalue("influxdb1"), name,
                                           **options)
        return backends.open_influxdb2(request.getfixturevalue("victoria_metrics"),
                                       request.getfixturevalue("influxdb1"), name, **options)
    return open_store


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores of one back-end; closes them after the test."""
    opened: list[Storage] = []
    factory = open_backend(request.param, request, tmp_path)

    def tracked(**options: object) -> Storage:
        store = factory(**options)
        opened.append(store)
        return store

    yield tracked
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreFactory) -> Storage:
    """A fresh, empty store of each back-end in turn."""
    return open_store()


def rolled_up_sqlite(path: Path, readings: list[Reading], rolled_ms: int,
                     synchronous: Literal["full", "normal"] = "full") -> SqliteStorage:
    """A SQLite store in ``path`` holding ``readings``, its 1-minute rollups readable up to
    ``rolled_ms`` (``storage.rollups`` is their state, for the caller to close)."""
    storage = SqliteStorage(path / "hub.db", synchronous=synchronous)
    storage.write(readings)
    state = RollupState(path / "state.db", storage.describe())
    storage.rollups = state
    RollupWorker(storage, state).run_once(rolled_ms + 2 * MINUTE_MS)
    assert state.readable(MINUTE_MS) == rolled_ms
    return storage
