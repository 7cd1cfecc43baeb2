"""Rollups and forwarders: exactly one process of a hub runs them.

Both keep their progress in the hub state file and would do their work twice (rollups
computed twice, readings forwarded twice) if every ingest worker ran them. The process that
holds the lock file beside the state file runs them; the others try again every few
seconds, so when the holder dies (the kernel drops its lock) another one takes over within
``retry_s``.
"""

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from hub.filelock import FileLock
from hub.forward.base import Forwarder
from hub.storage.rollup import RollupWorker

__all__ = ["RETRY_S", "Housekeeping", "housekeeping_lock_path"]

log = logging.getLogger(__name__)

RETRY_S = 5.0


def housekeeping_lock_path(state_path: Path) -> Path:
    """The lock file of the process that runs the rollups and forwarders."""
    return state_path.with_name(state_path.name + ".housekeeping.lock")


class Housekeeping:
    """Starts the rollup worker and the forwarders once this process holds the lock."""

    def __init__(self, lock_path: Path, rollups: RollupWorker, forwarders: Sequence[Forwarder],
                 retry_s: float = RETRY_S) -> None:
        self.lock = FileLock(lock_path)
        self.rollups = rollups
        self.forwarders = list(forwarders)
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether this process runs the rollups and forwarders."""
        return self.lock.held

    def start(self) -> None:
        """Take the lock now if free, else keep trying in the background."""
        if self._take():
            return
        log.info("rollups and forwarders run in another process of this hub (%s); this one "
                 "takes over if it stops", self.lock.holder() or "unknown")
        self._thread = threading.Thread(target=self._wait, name="housekeeping", daemon=True)
        self._thread.start()

    def _take(self) -> bool:
        if not self.lock.try_acquire():
            return False
        self.rollups.start()
        for forwarder in self.forwarders:
            forwarder.start()
        return True

    def _wait(self) -> None:
        while not self._stop.wait(self.retry_s):
            if self._take():
                log.info("this process now runs the rollups and forwarders")
                return

    def stop(self) -> None:
        """Stop the work (if this process ran it) and free the lock for another process."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self.lock.held:
            for forwarder in self.forwarders:
                forwarder.stop()
            self.rollups.stop()
            self.lock.release()
