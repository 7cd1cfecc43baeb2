"""Debouncing of digital inputs: a change counts once the contact has settled.

A reed switch or push button bounces for a few milliseconds. Every edge restarts a settle
timer; when the input has been stable for ``settle_s`` and differs from the last reported
state, one change is reported, stamped with the time of the first edge of the burst (when
the door really moved). A burst that ends where it began (a glitch) reports nothing.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DebounceThread", "Debouncer"]


@dataclass(slots=True)
class _Pending:
    value: int
    first_ts_ms: int
    last_edge_s: float


class Debouncer:
    """Pure debounce logic; times come from the caller so tests drive them."""

    def __init__(self, settle_s: float, initial: int | None = None) -> None:
        self.settle_s = settle_s
        self.reported = initial
        self._pending: _Pending | None = None

    def edge(self, value: int, ts_ms: int, now_s: float) -> None:
        """The input changed to ``value`` at wall-clock ``ts_ms`` (monotonic ``now_s``)."""
        first = self._pending.first_ts_ms if self._pending is not None else ts_ms
        self._pending = _Pending(value, first, now_s)

    def due_s(self) -> float | None:
        """Monotonic time at which the pending burst settles, if any."""
        return None if self._pending is None else self._pending.last_edge_s + self.settle_s

    def settle(self, now_s: float) -> tuple[int, int] | None:
        """``(value, ts_ms)`` of a settled change, else ``None``."""
        pending = self._pending
        if pending is None or now_s < pending.last_edge_s + self.settle_s:
            return None
        self._pending = None
        if pending.value == self.reported:
            return None
        self.reported = pending.value
        return pending.value, pending.first_ts_ms


class DebounceThread:
    """Runs a :class:`Debouncer` and calls ``report(value, ts_ms)`` for settled changes."""

    def __init__(self, settle_s: float, initial: int | None,
                 report: Callable[[int, int], None], name: str) -> None:
        self.debouncer = Debouncer(settle_s, initial)
        self.report = report
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"debounce-{name}")
        self._thread.start()

    def edge(self, value: int) -> None:
        """Record an edge now (called from the GPIO callback thread)."""
        ts_ms = time.time_ns() // 1_000_000
        with self._cond:
            self.debouncer.edge(value, ts_ms, time.monotonic())
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                due = self.debouncer.due_s()
                timeout = None if due is None else max(0.0, due - time.monotonic())
                self._cond.wait(timeout)
                if self._stopped:
                    return
                change = self.debouncer.settle(time.monotonic())
            if change is not None:
                self.report(*change)
