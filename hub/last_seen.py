"""Last-seen times of stored batches, gathered in memory and written to the registry in one
transaction at most once per ``FLUSH_INTERVAL_S``.

A committed registry transaction per stored batch costs the ingest writer a tenth of its time
at high rates; the times are a convenience (the readings are what is durable), so they may
reach the registry up to a second late. A device never written before is written at once, so
a new device shows up in the API as soon as its first batch is stored.
"""

import time
from collections.abc import Callable, Mapping

__all__ = ["FLUSH_INTERVAL_S", "LastSeenBuffer"]

FLUSH_INTERVAL_S = 1.0
#: Devices remembered as written; beyond, new devices wait for the interval like the others.
_MAX_KNOWN = 100_000


class LastSeenBuffer:
    """Keeps the latest time per device until :meth:`flush` hands them to ``write``.

    Used by one thread (the ingest writer), so it takes no lock.
    """

    def __init__(self, write: Callable[[Mapping[tuple[str, str], int]], None],
                 interval_s: float = FLUSH_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._interval_s = interval_s
        self._clock = clock
        self._pending: dict[tuple[str, str], int] = {}
        self._written: set[tuple[str, str]] = set()  # devices the registry already has
        self._flushed_at = clock()
        self._new = False

    def add(self, seen: Mapping[tuple[str, str], int]) -> None:
        """Merge one stored batch's times (the later time of a device wins)."""
        pending = self._pending
        for key, ts in seen.items():
            old = pending.get(key)
            if old is None or ts > old:
                pending[key] = ts
            if not self._new and key not in self._written and len(self._written) < _MAX_KNOWN:
                self._new = True

    @property
    def pending(self) -> bool:
        """Whether times wait to be written."""
        return bool(self._pending)

    def due_in(self) -> float:
        """Seconds until the pending times are due (0 when they are due now)."""
        if self._new:
            return 0.0
        return max(0.0, self._flushed_at + self._interval_s - self._clock())

    def flush_if_due(self) -> None:
        """Write the pending times if a device is new or the interval is over."""
        if self._pending and self.due_in() <= 0:
            self.flush()

    def flush(self) -> None:
        """Write the pending times now (a failed write is dropped, not retried: the next
        batches of the same devices carry later times anyway)."""
        self._flushed_at = self._clock()
        self._new = False
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._write(pending)
        if len(self._written) < _MAX_KNOWN:
            self._written.update(pending)
