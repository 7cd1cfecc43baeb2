"""A deliberately plain model of what every back-end must answer, written from the contract's
words, not from the code under test: readings in, the expected downsampled answer out."""

from collections import defaultdict
from collections.abc import Iterable

from fabcity.reading import Reading
from hub.storage.base import ReadingQuery

__all__ = ["expected_buckets", "matching"]


def matching(readings: Iterable[Reading], q: ReadingQuery) -> list[Reading]:
    """The readings ``q`` selects, in the contract's order (series, then time)."""
    found = [
        r for r in readings
        if q.start_ms <= r.ts_ms < q.end_ms
        and all(want is None or getattr(r, name) == want
                for name, want in (("site", q.site), ("device", q.device),
                                   ("sensor", q.sensor), ("metric", q.metric)))
    ]
    return sorted(found, key=lambda r: (r.site, r.device, r.sensor, r.metric, r.ts_ms))


def _rise(before: float, after: float) -> float:
    # A counter that drops was reset: it counted from zero up to `after`.
    return after - before if after >= before else after


def expected_buckets(readings: Iterable[Reading], q: ReadingQuery,
                     ) -> list[tuple[tuple[str, str, str, str], int, float]]:
    """``(series, bucket start, value)`` for every non-empty bucket, in order."""
    assert q.every_ms is not None
    groups: dict[tuple[tuple[str, str, str, str], int], list[float]] = defaultdict(list)
    rises: dict[tuple[tuple[str, str, str, str], int], float] = defaultdict(float)
    previous: dict[tuple[str, str, str, str], float] = {}
    for r in matching(readings, q):
        key = (r.site, r.device, r.sensor, r.metric)
        bucket = (key, r.ts_ms // q.every_ms * q.every_ms)
        groups[bucket].append(r.value)
        if key in previous:  # every step counts in the bucket where it ends
            rises[bucket] += _rise(previous[key], r.value)
        previous[key] = r.value
    out = []
    for (key, start), values in sorted(groups.items()):
        value = {
            "mean": lambda v: sum(v) / len(v),
            "min": min,
            "max": max,
            "first": lambda v: v[0],
            "last": lambda v: v[-1],
            "sum": sum,
            "count": len,
            "increase": lambda _v, b=(key, start): rises[b],
        }[q.agg](values)
        out.append((key, start, float(value)))
    return out[: q.limit]
