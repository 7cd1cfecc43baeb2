"""How the tests open each storage back-end against its real server.

Every factory takes the test's temporary directory, the session's servers and a name unique
to the test (a database or bucket of its own), and returns an open :class:`Storage`.
"""

from pathlib import Path

from hub.storage.sqlite import SqliteStorage

__all__ = ["open_sqlite"]


def open_sqlite(tmp_path: Path, name: str, **options: object) -> SqliteStorage:
    """SQLite in the test's temporary directory."""
    path = options.pop("path", tmp_path / f"{name}.db")
    return SqliteStorage(path, synchronous="normal", **options)  # type: ignore[arg-type]
