"""SQLite under real faults: the file deleted or replaced, the disk full, the file read-only.

Each fault is made for real (small tmpfs, loop-mounted ext4 with ``chattr +i``, read-only bind
mounts), so these tests need root; they are skipped otherwise.
"""

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabcity.errors import StorageUnavailable
from fabcity.reading import Reading
from hub.storage.sqlite import SqliteStorage

T0 = 1_700_000_000_000
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


def batch(i: int, metrics: int = 1) -> list[Reading]:
    return [Reading("lab", "pi-1", "air", f"m{j}", float(i), T0 + i * 1000, "ug/m3")
            for j in range(metrics)]


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs."""
    mount = tmp_path / "small"
    mount.mkdir()
    _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount))
    try:
        yield mount
    finally:
        _run("umount", "-l", str(mount))


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Path]:
    """A loop-mounted ext4 (tmpfs ignores ``chattr +i`` on open files; ext4 does not)."""
    image, mount = tmp_path / "fs.img", tmp_path / "ext4"
    mount.mkdir()
    with image.open("wb") as f:
        f.truncate(8 << 20)
    _run("mkfs.ext4", "-q", str(image))
    _run("mount", "-o", "loop", str(image), str(mount))
    try:
        yield mount
    finally:
        for child in mount.glob("*.db*"):
            subprocess.run(["chattr", "-i", str(child)], capture_output=True)
        _run("umount", "-l", str(mount))


def test_writes_stop_once_the_database_file_is_deleted(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "hub.db")
    try:
        store.write(batch(0))
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"hub.db{suffix}").unlink(missing_ok=True)
        with pytest.raises(StorageUnavailable, match=r"hub\.db was deleted"):
            store.write(batch(1))
        with pytest.raises(StorageUnavailable, match="was deleted"):  # and stays refused
            store.write(batch(2))
        assert store.health().startswith("unavailable: the database file")
        assert not (tmp_path / "hub.db").exists()  # no new empty file in its place
    finally:
        store.close()


def test_writes_stop_once_the_database_file_is_replaced(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "hub.db")
    try:
        store.write(batch(0))
        other = SqliteStorage(tmp_path / "restored.db")
        other.close()
        os.replace(tmp_path / "restored.db", tmp_path / "hub.db")
        with pytest.raises(StorageUnavailable, match="replaced by another file"):
            store.write(batch(1))
        assert "replaced" in store.health()
    finally:
        store.close()


def test_a_deleted_database_can_be_copied_back_whole_from_the_descriptor_named(
    tmp_path: Path,
) -> None:
    """The error names /proc/<pid>/fd/<n>; copying it recovers every acknowledged reading."""
    store = SqliteStorage(tmp_path / "hub.db")
    try:
        for i in range(50):
            store.write(batch(i, metrics=4))
        (tmp_path / "hub.db").unlink()
        with pytest.raises(StorageUnavailable) as refused:
            store.write(batch(99))
        proc = str(refused.value).split("Copy the open database out of ")[1].split()[0]
        shutil.copyfile(proc, tmp_path / "rescued.db")
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "rescued.db") as rescued:
        assert rescued.execute("SELECT COUNT(*) FROM points").fetchone() == (200,)


def test_a_write_into_a_healthy_file_costs_no_more_than_a_few_stats(tmp_path: Path) -> None:
    """The identity check runs on every batch: it must stay far below a commit's cost."""
    store = SqliteStorage(tmp_path / "hub.db", synchronous="normal")
    try:
        import time

        started = time.perf_counter()
        for _ in range(1000):
            store._identity.problem()
        per_check_s = (time.perf_counter() - started) / 1000
        assert per_check_s < 50e-6
    finally:
        store.close()


@needs_root
def test_a_full_disk_is_named_and_writing_resumes_once_space_is_freed(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    store = SqliteStorage(small_disk / "hub.db")
    try:
        store.write(batch(0))
        with ballast.open("wb") as f:  # fill the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        def fill() -> None:
            for i in range(1, 200):
                store.write(batch(i, metrics=50))

        with pytest.raises(StorageUnavailable) as full:
            fill()
        assert str(full.value).startswith("disk full: no space left")
        assert "no transaction is active" not in str(full.value)
        assert store.health() == "ok"  # the file is fine; ingest reports the write error
        ballast.unlink()
        store.write(batch(500, metrics=50))
        assert store.latest()[0].ts_ms == T0 + 500 * 1000
    finally:
        store.close()


@needs_root
def test_a_read_only_file_is_named_and_writing_resumes_once_writable(ext4: Path) -> None:
    store = SqliteStorage(ext4 / "hub.db")
    try:
        store.write(batch(0))
        for name in ("hub.db", "hub.db-wal"):
            _run("chattr", "+i", str(ext4 / name))
        with pytest.raises(StorageUnavailable) as refused:
            store.write(batch(1))
        assert str(refused.value).startswith("read-only: ")
        for name in ("hub.db", "hub.db-wal"):
            _run("chattr", "-i", str(ext4 / name))
        store.write(batch(2))
        assert store.count() == 2
    finally:
        store.close()


@needs_root
def test_a_database_on_a_read_only_filesystem_names_the_cause_at_open(tmp_path: Path) -> None:
    data, view = tmp_path / "data", tmp_path / "ro"
    data.mkdir()
    view.mkdir()
    SqliteStorage(data / "hub.db").close()
    _run("mount", "--bind", str(data), str(view))
    try:
        _run("mount", "-o", "remount,bind,ro", str(view))
        with pytest.raises(StorageUnavailable, match="read-only: "):
            SqliteStorage(view / "hub.db")
    finally:
        _run("umount", str(view))
