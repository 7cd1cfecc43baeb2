"""Rate-limited logging: a line that repeats per message must not flood the journal.

A hostile or broken publisher can make the hub (or a flapping sensor the edge) log the same
warning thousands of times a second. :class:`RateLimit` is a :class:`logging.Filter` keyed by
the message template (``record.msg`` before its arguments are filled in, plus an optional
``rate_key`` passed as ``extra`` when one template covers distinct cases): at most ``burst``
records of one template pass per ``interval_s``; the rest are dropped and counted, and the
next record of that template that passes says how many were suppressed.
"""

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["BURST", "INTERVAL_S", "RateLimit", "rate_limited"]

BURST = 5
INTERVAL_S = 60.0
_MAX_KEYS = 1000  # templates are few; past this the oldest windows are forgotten


class RateLimit(logging.Filter):
    """Let at most ``burst`` records per message template through every ``interval_s``."""

    def __init__(self, burst: int = BURST, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        # template -> [window start, passed in window, suppressed since the last one passed]
        self._windows: dict[tuple[str, int, str, str], list[float]] = {}

    def reset(self) -> None:
        """Forget every window (tests start from a clean slate)."""
        with self._lock:
            self._windows.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg), str(getattr(record, "rate_key", "")))
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= _MAX_KEYS:
                    self._windows.pop(next(iter(self._windows)))
                window = self._windows[key] = [now, 0, 0]
            elif now - window[0] >= self.interval_s:
                window[0], window[1] = now, 0
            if window[1] >= self.burst:
                window[2] += 1
                return False
            window[1] += 1
            last = window[1] == self.burst
            suppressed, window[2] = int(window[2]), 0
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} more like this suppressed]"
        elif last:
            record.msg = (f"{record.msg} [repeated {self.burst} times: further lines like this "
                          f"are suppressed for {self.interval_s:.0f} s]")
        return True


def rate_limited(logger: logging.Logger, burst: int = BURST,
                 interval_s: float = INTERVAL_S) -> logging.Logger:
    """Attach a :class:`RateLimit` to ``logger`` (once) and return the logger."""
    if not any(isinstance(f, RateLimit) for f in logger.filters):
        logger.addFilter(RateLimit(burst, interval_s))
    return logger
