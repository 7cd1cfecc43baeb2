"""An exclusive lock on a file, held by one process until it releases it or dies.

``fcntl.flock`` locks belong to the open file: the kernel drops them when the process exits,
SIGKILL and power cuts included, so a crashed holder never leaves a stale lock. They work
between processes of one machine (not over NFS).
"""

import fcntl
import os
import socket
from pathlib import Path

__all__ = ["FileLock"]


class FileLock:
    """``try_acquire`` once; the holder's host and pid are written in the file for others."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never blocks."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """``host pid`` of the last holder, as it wrote it ("" if unknown)."""
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def release(self) -> None:
        """Let another process take it; safe to call twice."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
