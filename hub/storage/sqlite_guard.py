"""What can go wrong under a SQLite file, said plainly: the file swapped or deleted, the disk
full, the file or filesystem read-only; and page caches sized for the machine.

SQLite writes through the file descriptors it opened: a database deleted (or replaced by a
restore) under a running hub keeps taking commits into the unlinked inode, which vanishes at the
next restart. :class:`FileIdentity` remembers the device and inode of the database and of its
write-ahead log when the store opens and compares them with what the path names now, one
``stat`` each (a few microseconds per batch). While the hub runs, the old database stays open
through our own descriptor, so an operator can still copy it out of ``/proc/<pid>/fd/<n>``.
"""

import contextlib
import errno
import os
import shutil
import sqlite3
from pathlib import Path

__all__ = ["FileIdentity", "cache_kib", "describe_error"]

MIB_KIB = 1024


class FileIdentity:
    """The database file and its ``-wal`` as opened; :meth:`problem` says if the path moved."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal = path.with_name(path.name + "-wal")
        # Our own descriptor: keeps the opened file reachable (and named in the error) if the
        # path is deleted, whatever SQLite does with its own descriptors.
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(self.fd)
        self._db = (st.st_dev, st.st_ino)
        self._wal: tuple[int, int] | None = None

    def note_wal(self) -> None:
        """Remember the log once SQLite has created it (it stays while a connection is open)."""
        try:
            st = os.stat(self.wal)
        except FileNotFoundError:
            return
        self._wal = (st.st_dev, st.st_ino)

    def problem(self) -> str | None:
        """``None`` while the path still names the files we write, else what happened."""
        for name, path, known in (("database file", self.path, self._db),
                                  ("write-ahead log", self.wal, self._wal)):
            if known is None:
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                what = "was deleted"
            except OSError as exc:
                return f"cannot check the {name} {path}: {exc.strerror}"
            else:
                if (st.st_dev, st.st_ino) == known:
                    continue
                what = "was replaced by another file"
            return (f"the {name} {path} {what} while the hub had it open; writes stop so that "
                    f"nothing is acknowledged into a file that would vanish at restart. "
                    f"Copy the open database out of /proc/{os.getpid()}/fd/{self.fd} before "
                    f"stopping the hub, put it back at {self.path}, then restart the hub "
                    f"(see docs/operations.md)")
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def describe_error(exc: sqlite3.Error, path: Path, doing: str) -> str:
    """A cause an operator can act on, from SQLite's error code (and the disk's free space)."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == sqlite3.SQLITE_FULL:
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = -1
        room = f" ({free // 1024} KiB free)" if free >= 0 else ""
        return (f"disk full: no space left on the filesystem holding {path}{room}; "
                f"free some space, writing resumes by itself ({doing}: {exc})")
    refused = (errno.EROFS, errno.EPERM, errno.EACCES)
    if primary == sqlite3.SQLITE_READONLY or (
            primary in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN)
            and _errno_of(path) in refused):
        return (f"read-only: {path} or its filesystem cannot be written (remounted read-only "
                f"after disk errors? immutable? wrong owner?); writing resumes once it can "
                f"({doing}: {exc})")
    if primary == sqlite3.SQLITE_IOERR:
        return f"I/O error on {path} (a failing disk or SD card?) ({doing}: {exc})"
    return f"SQLite {doing} failed: {exc}"


def _errno_of(path: Path) -> int | None:
    """Why opening ``path`` (or its directory) for writing fails now, if it does."""
    try:
        if not path.exists():
            return None if os.access(path.parent, os.W_OK) else errno.EACCES
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        return exc.errno
    os.close(fd)
    return None


def cache_kib(share: int, low_mib: int, high_mib: int) -> int:
    """A page cache of 1/``share`` of the machine's memory, within ``[low, high]`` MiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 1024 * 1024 * MIB_KIB  # 1 GiB: a small Pi
    kib = total // 1024 // share
    return max(low_mib * MIB_KIB, min(high_mib * MIB_KIB, kib))
