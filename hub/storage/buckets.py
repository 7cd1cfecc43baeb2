"""Downsampling, done once for every back-end: bucket statistics in, one reading per bucket out.

A back-end only says, per series and bucket, how many points there were, their sum, min,
max, first, last and the counter rise inside the bucket (:class:`BucketStats`). Everything
else happens here: merging small buckets into large ones (rollups of a minute or an hour
into the buckets a query asks for), adding the counter step that crosses from one bucket
into the next, and picking the aggregate. The same code serves SQLite and InfluxDB, so they
give the same answer.
"""

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from fabcity.reading import Reading
from hub.storage.base import (
    ROLLUP_RESOLUTIONS_MS,
    BucketStats,
    ReadingQuery,
    RollupValues,
    SeriesNames,
    StatsRow,
)

if TYPE_CHECKING:
    from hub.storage.base import Storage

__all__ = ["OmittedBuckets", "bucket_stats", "counter_step", "counting_omitted", "downsample",
           "downsample_rollup_rows", "downsample_stats", "downsample_values", "merge",
           "rollup_plan", "value_of"]


@dataclass(slots=True)
class OmittedBuckets:
    """Buckets left out of downsampled answers because their aggregate is not a finite
    number (a sum or a counter rise beyond the float range, about 1.8e308)."""

    count: int = 0


_omitted: ContextVar[OmittedBuckets | None] = ContextVar("omitted_buckets", default=None)


@contextmanager
def counting_omitted() -> Iterator[OmittedBuckets]:
    """Count, in the current context, the buckets :func:`downsample` leaves out, so an
    answer can say that (and how many) buckets are missing rather than drop them silently."""
    tally = OmittedBuckets()
    token = _omitted.set(tally)
    try:
        yield tally
    finally:
        _omitted.reset(token)


def counter_step(previous: float, current: float) -> float:
    """The rise of a counter from one reading to the next; a drop is a reset to zero."""
    return current - previous if current >= previous else current


def merge(rows: Iterable[BucketStats], every_ms: int) -> list[BucketStats]:
    """Combine rows ordered by series then start into buckets of ``every_ms``.

    Rows merged into one bucket add the counter step between them to its ``increase``; the
    step into a bucket from the one before it is left to :func:`value_of`. A row that is a
    bucket on its own comes back as it is (no copy: a 1-minute chart read from 1-minute
    rollups merges nothing); the input rows are never modified.
    """
    out: list[BucketStats] = []
    current: BucketStats | None = None
    owned = False  # ``current`` is our copy, safe to modify
    for row in rows:
        start = row.start_ms // every_ms * every_ms
        if current is not None and current.start_ms == start and current.key == row.key:
            if not owned:
                current = out[-1] = replace(current)
                owned = True
            current.increase += row.increase + counter_step(current.last, row.first)
            current.count += row.count
            current.sum += row.sum
            current.min = min(current.min, row.min)
            current.max = max(current.max, row.max)
            current.last = row.last
            current.unit = row.unit
        else:
            owned = start != row.start_ms
            current = replace(row, start_ms=start) if owned else row
            out.append(current)
    return out


def value_of(row: BucketStats, agg: str, previous: BucketStats | None) -> float:
    """The value of aggregate ``agg`` for a bucket; ``previous`` is the series' bucket before
    it in the answer (for the counter step that crosses into this one)."""
    if agg == "mean":
        mean = row.sum / row.count
        if not math.isfinite(mean):  # the sum overflowed: average without summing
            mean = row.min / 2 + row.max / 2 if row.count else math.nan  # never overflows
        return mean
    if agg == "increase":
        rise = row.increase
        if previous is not None and previous.key == row.key:
            rise += counter_step(previous.last, row.first)
        return rise
    if agg == "count":
        return float(row.count)
    value: float = getattr(row, agg)  # min, max, first, last, sum
    return value


def rollup_plan(storage: "Storage", q: ReadingQuery) -> tuple[int, int, int] | None:
    """``(resolution, a, b)`` when rollups of ``resolution`` can answer ``[a, b)`` of ``q``
    (the rest comes from raw points), else ``None``. The coarsest usable rollup wins."""
    state = storage.rollups
    if state is None or q.every_ms is None:
        return None
    for resolution in reversed(ROLLUP_RESOLUTIONS_MS):
        if q.every_ms % resolution:
            continue
        watermark = state.readable(resolution)
        if watermark is None:
            continue
        a = -(-q.start_ms // resolution) * resolution
        b = min(watermark, q.end_ms // resolution * resolution)
        if a < b:
            return resolution, a, b
    return None


_ORDER = attrgetter("site", "device", "sensor", "metric", "start_ms")  # series, then time
_new_tuple = tuple.__new__  # a named tuple without checks (nor ``_make``'s length check)


def bucket_stats(storage: "Storage", q: ReadingQuery) -> list[BucketStats]:
    """Statistics per series and bucket of ``q.every_ms`` (rollups where they cover the
    range, raw points elsewhere), ordered by series then bucket start."""
    return _bucket_stats(storage, q)[0]


def _bucket_stats(storage: "Storage", q: ReadingQuery,
                  whole: bool = False) -> tuple[list[BucketStats], bool]:
    """:func:`bucket_stats`, and whether the rollup read stopped at its row limit (enough
    for ``q.limit`` buckets, unless some of them have no finite value). ``whole``: read
    every rollup row of the range."""
    assert q.every_ms is not None
    plan = rollup_plan(storage, q)
    if plan is None:
        return merge(storage.stats(q), q.every_ms), False
    resolution, a, b = plan
    rows: list[BucketStats] = []
    if q.start_ms < a:
        rows += storage.stats(q.window(q.start_ms, a, resolution))
    window = q.window(a, b)
    cap = q.limit * max(1, q.every_ms // resolution)
    rolled = storage.read_rollup(resolution, replace(window, limit=2**62) if whole else window)
    rows += rolled
    if b < q.end_ms:
        rows += storage.stats(q.window(b, q.end_ms, resolution))
    rows.sort(key=_ORDER)
    return merge(rows, q.every_ms), not whole and len(rolled) >= cap


def downsample(storage: "Storage", q: ReadingQuery) -> list[Reading]:
    """One reading per series and bucket of ``q.every_ms``, valued by ``q.agg``."""
    assert q.every_ms is not None
    plan = rollup_plan(storage, q)
    if plan is not None and plan[0] == q.every_ms:
        return downsample_rollup_rows(storage, q, plan[1], plan[2])
    return downsample_stats(storage, q)


def downsample_values(storage: "Storage", q: ReadingQuery) -> RollupValues | None:
    """:func:`downsample` as ``(series id, start_ms, value)`` rows, when the buckets are the
    rollups' own and the back-end works the aggregate out itself
    (:meth:`~hub.storage.base.Storage.rollup_values`): no object per bucket, for answers
    written straight to text. The same buckets and values as :func:`downsample`, the
    buckets with no finite value left out (and counted) alike; ``None`` when this way does
    not apply. Series met only outside the rollups get ids below zero."""
    assert q.every_ms is not None
    plan = rollup_plan(storage, q)
    if plan is None or plan[0] != q.every_ms:
        return None
    resolution, a, b = plan
    # The raw points outside [a, b): at most one bucket per series before, a few after.
    edges: list[tuple[BucketStats, bool]] = []
    if q.start_ms < a:
        edges += ((stats, True) for stats in storage.stats(q.window(q.start_ms, a, resolution)))
    if b < q.end_ms:
        edges += ((stats, False) for stats in storage.stats(q.window(b, q.end_ms, resolution)))
    read = q.limit
    while True:  # read again, more, only when buckets with no finite value cut the page
        found = storage.rollup_values(resolution, replace(q.window(a, b), limit=read))
        if found is None:
            return None
        names, rows = found
        cut = len(rows) >= read
        if edges:
            names, rows = _with_edges(names, rows, edges, q.agg, cut)
        finite = [row for row in rows if math.isfinite(row[2])]
        if not cut or len(finite) >= q.limit or read >= 2**40:
            break
        read *= 4
    if len(finite) < len(rows) and (tally := _omitted.get()) is not None:
        # As downsample_stats counts: those met before the answer's last bucket.
        last = finite[q.limit - 1] if len(finite) >= q.limit else None
        for row in rows:
            if row is last:
                break
            if not math.isfinite(row[2]):
                tally.count += 1
    return RollupValues(names, finite[:q.limit])


def _with_edges(names: dict[int, SeriesNames], rows: list[tuple[int, int, float]],
                edges: list[tuple[BucketStats, bool]], agg: str,
                cut: bool) -> tuple[dict[int, SeriesNames], list[tuple[int, int, float]]]:
    """Rollup value rows with the buckets of raw points before (``True``) and after them
    put in place; a series with no rollup row gets an id below zero."""
    names = dict(names)
    ids = {series[:4]: sid for sid, series in names.items()}
    head: dict[int, tuple[int, int, float]] = {}
    tail: dict[int, list[tuple[int, int, float]]] = {}
    for stats, before in edges:
        sid = ids.get(stats.key)
        if sid is None:
            sid = ids[stats.key] = -1 - len(names)
            names[sid] = (*stats.key, stats.unit)
        row = (sid, stats.start_ms, value_of(stats, agg, None))
        if before:
            head[sid] = row
        else:
            tail.setdefault(sid, []).append(row)
    return names, _spliced(names, rows, head, tail, cut)


def _spliced(names: dict[int, SeriesNames], rows: list[tuple[int, int, float]],
             head: dict[int, tuple[int, int, float]],
             tail: dict[int, list[tuple[int, int, float]]],
             cut: bool) -> list[tuple[int, int, float]]:
    """``rows`` (ordered by series names, then start) with each series' ``head`` row before
    its own and its ``tail`` rows after: series by series, each series' run of rows found
    by bisection (a few steps per series, none per row). ``cut``: ``rows`` stop at a row
    limit, so nothing is known after the last of them."""
    order = sorted(names, key=names.__getitem__)
    rank = {sid: i for i, sid in enumerate(order)}
    rank_of = rank.__getitem__

    def series_rank(row: tuple[int, int, float]) -> int:
        return rank_of(row[0])

    out: list[tuple[int, int, float]] = []
    at = 0
    for sid in order:
        end = bisect_right(rows, rank[sid], lo=at, key=series_rank)
        if sid in head:
            out.append(head[sid])
        out += rows[at:end]
        at = end
        if cut and at == len(rows):
            break
        out += tail.get(sid, ())
    return out


def _row_of(stats: BucketStats) -> StatsRow:
    return (stats.site, stats.device, stats.sensor, stats.metric, stats.unit, stats.start_ms,
            stats.count, stats.sum, stats.min, stats.max, stats.first, stats.last,
            stats.increase)


_ROW_ORDER = itemgetter(0, 1, 2, 3, 5)  # series, then bucket start (a StatsRow)


def downsample_rollup_rows(storage: "Storage", q: ReadingQuery, a: int, b: int) -> list[Reading]:
    """:func:`downsample_stats` when the buckets are the rollups' own (``every`` = their
    resolution, rollups readable over ``[a, b)``): every row is a bucket, nothing merges, so
    the rows go from tuples to readings without a :class:`BucketStats` each nor a merge pass.
    The answer is the same, reading for reading."""
    assert q.every_ms is not None
    resolution = q.every_ms
    rows: list[StatsRow] = []
    if q.start_ms < a:
        rows += map(_row_of, storage.stats(q.window(q.start_ms, a, resolution)))
    rolled = storage.read_rollup_rows(resolution, q.window(a, b))
    # A read cut at the limit says nothing of its series' rows after the last one read:
    # the answer may not go past it (only buckets with no finite value let it get there).
    stop = rolled[-1] if len(rolled) >= q.limit else None
    at_stop: int | None = None
    rows += rolled
    if b < q.end_ms:
        rows += map(_row_of, storage.stats(q.window(b, q.end_ms, resolution)))
    rows.sort(key=_ROW_ORDER)  # three runs, each ordered: a linear merge
    out: list[Reading] = []
    add = out.append
    agg, limit = q.agg, q.limit
    field = _FIELDS.get(agg)  # min, max, first, last, sum: one field of the row
    mean, increase = agg == "mean", agg == "increase"
    omitted = 0
    # As downsample_stats: the first reading of a series is checked, the others reuse it.
    site = device = sensor = metric = ""
    unit: str | None = None
    last_key: tuple[str, str, str, str] | None = None
    last_value = 0.0  # ``last`` of the row before, for a counter's step into this bucket
    value: float
    for row in rows:
        key = row[:4]
        if mean:
            count = row[6]
            value = row[7] / count if count else value_of(BucketStats(*row), agg, None)
            if not math.isfinite(value):
                value = value_of(BucketStats(*row), agg, None)
        elif increase:
            value = row[12]
            if key == last_key:
                value += counter_step(last_value, row[10])
        elif field is not None:
            value = field(row)
        else:
            value = value_of(BucketStats(*row), agg, None)
        last_key, last_value = key, row[11]
        if row is stop:
            at_stop = len(out) + math.isfinite(value)
        if not math.isfinite(value):
            omitted += 1
            continue
        if row[3] == metric and row[2] == sensor and row[1] == device and row[0] == site:
            add(_new_tuple(Reading, (site, device, sensor, metric, float(value), row[5],
                                     unit, ())))
        else:
            checked = Reading(row[0], row[1], row[2], row[3], value, row[5], row[4])
            site, device, sensor, metric, unit = (checked.site, checked.device, checked.sensor,
                                                  checked.metric, checked.unit)
            add(checked)
        if len(out) >= limit:
            break
    if at_stop is not None and len(out) > at_stop:
        return downsample_stats(storage, q)  # past the cut: read the general way instead
    if omitted and (tally := _omitted.get()) is not None:
        tally.count += omitted
    return out


#: Aggregates that are one field of a :data:`StatsRow`, and its getter.
_FIELDS = {"sum": itemgetter(7), "min": itemgetter(8), "max": itemgetter(9),
           "first": itemgetter(10), "last": itemgetter(11)}


def downsample_stats(storage: "Storage", q: ReadingQuery) -> list[Reading]:
    """:func:`downsample` through :func:`bucket_stats`: any bucket size, any back-end."""
    out, omitted, cut = _downsampled(storage, q, whole=False)
    if cut and omitted:
        # The rollup read stopped where ``q.limit`` buckets end, but some of them have no
        # finite value: the buckets after the cut are unknown. Read the range whole.
        out, omitted, _ = _downsampled(storage, q, whole=True)
    if omitted and (tally := _omitted.get()) is not None:
        tally.count += omitted
    return out


def _downsampled(storage: "Storage", q: ReadingQuery,
                 whole: bool) -> tuple[list[Reading], int, bool]:
    """The readings of :func:`downsample_stats`, how many buckets were left out, and
    whether the rollup read was cut (:func:`_bucket_stats`)."""
    assert q.every_ms is not None
    out: list[Reading] = []
    add = out.append
    agg, limit = q.agg, q.limit
    mean = agg == "mean"
    previous: BucketStats | None = None
    omitted = 0
    # The first reading of each series is built (and checked) in full; the others of the
    # same series reuse its names and unit (kept in locals): a 1-minute day is 1,440
    # readings per series.
    site = device = sensor = metric = ""
    unit: str | None = None
    stats, cut = _bucket_stats(storage, q, whole)
    for row in stats:
        if mean and row.count:  # value_of's common case, inline
            value = row.sum / row.count
            if not math.isfinite(value):
                value = value_of(row, agg, previous)
        else:
            value = value_of(row, agg, previous)
        previous = row
        if not math.isfinite(value):  # beyond the float range: no honest number to give
            omitted += 1
            continue
        if (row.metric == metric and row.sensor == sensor and row.device == device
                and row.site == site):
            add(_new_tuple(Reading, (site, device, sensor, metric, float(value), row.start_ms,
                                     unit, ())))
        else:
            checked = Reading(row.site, row.device, row.sensor, row.metric, value,
                              row.start_ms, row.unit)
            site, device, sensor, metric, unit = (checked.site, checked.device, checked.sensor,
                                                  checked.metric, checked.unit)
            add(checked)
        if len(out) >= limit:
            break
    return out, omitted, cut
