"""Fixtures: a real SQLite storage and state file per test, fast backoff."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.forward.cursor import ForwardCursors
from hub.storage.sqlite import SqliteStorage


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "hub.db")
    yield store
    store.close()


@pytest.fixture
def cursors(tmp_path: Path) -> Iterator[ForwardCursors]:
    state = ForwardCursors(tmp_path / "state.db")
    yield state
    state.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    import hub.forward.http

    monkeypatch.setattr(hub.forward.http, "RETRY_MIN_S", 0.01)
