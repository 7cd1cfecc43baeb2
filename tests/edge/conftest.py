"""Edge tests keep buffer spools in their own directory, not in the machine's /dev/shm."""

from pathlib import Path

import pytest

import edge.buffer


@pytest.fixture(autouse=True)
def _spool_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge.buffer, "DEFAULT_SPOOL_DIR", tmp_path / "shm")
