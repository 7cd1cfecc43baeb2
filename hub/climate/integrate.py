"""Integrals over raw points, split at period boundaries.

Power becomes energy by the trapezoid rule; a binary condition (running or not) becomes hours
by holding each reading's value until the next. An interval between two readings longer than
the site's ``max_gap_s`` is not bridged: it adds nothing, and it does not count as covered.
An interval that crosses a boundary is cut there (the power is interpolated linearly at the
cut), so a machine running across midnight counts in both days.
"""

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from hub.climate.series import Period, period_index

__all__ = ["MS_PER_HOUR", "RunTotals", "integrate_power", "run_lengths"]

MS_PER_HOUR = 3_600_000


@dataclass(slots=True)
class RunTotals:
    """Per period: hours in each state, transitions idle -> running, and covered time."""

    running_h: float = 0.0
    idle_h: float = 0.0
    starts: int = 0
    covered_ms: int = 0


def _pieces(bounds: Sequence[Period], t0: int, t1: int) -> Iterable[tuple[int, int, int]]:
    """``(period index, a, b)`` for the parts of ``[t0, t1)`` inside the periods (sorted,
    adjacent or not)."""
    i = max(0, bisect_right(bounds, t0, key=lambda p: p.start_ms) - 1)
    while i < len(bounds) and bounds[i].start_ms < t1:
        a, b = max(t0, bounds[i].start_ms), min(t1, bounds[i].end_ms)
        if a < b:
            yield i, a, b
        i += 1


def integrate_power(points: Iterable[tuple[int, float]], bounds: Sequence[Period],
                    max_gap_ms: int) -> list[tuple[float, int]]:
    """``(Wh, covered ms)`` per period from power readings in W (time order)."""
    wh = [0.0] * len(bounds)
    covered = [0] * len(bounds)
    previous: tuple[int, float] | None = None
    for t1, v1 in points:
        if previous is not None:
            t0, v0 = previous
            if 0 < t1 - t0 <= max_gap_ms:
                slope = (v1 - v0) / (t1 - t0)
                for i, a, b in _pieces(bounds, t0, t1):
                    va, vb = v0 + slope * (a - t0), v0 + slope * (b - t0)
                    wh[i] += (va + vb) / 2 * (b - a) / MS_PER_HOUR
                    covered[i] += b - a
        previous = (t1, v1)
    return list(zip(wh, covered, strict=True))


def run_lengths(points: Iterable[tuple[int, float]], bounds: Sequence[Period],
                max_gap_ms: int, running: Callable[[float], bool]) -> list[RunTotals]:
    """Hours running and idle, and starts, per period; ``running(value)`` says whether a
    reading means running. A start is an idle reading followed (within ``max_gap_ms``) by a
    running one, counted in the period of the running one."""
    out = [RunTotals() for _ in bounds]
    previous: tuple[int, bool] | None = None
    for t1, value in points:
        now_running = running(value)
        if previous is not None:
            t0, was_running = previous
            if 0 < t1 - t0 <= max_gap_ms:
                for i, a, b in _pieces(bounds, t0, t1):
                    hours = (b - a) / MS_PER_HOUR
                    if was_running:
                        out[i].running_h += hours
                    else:
                        out[i].idle_h += hours
                    out[i].covered_ms += b - a
                if now_running and not was_running:
                    at = period_index(bounds, t1)
                    if at is not None:
                        out[at].starts += 1
        previous = (t1, now_running)
    return out
