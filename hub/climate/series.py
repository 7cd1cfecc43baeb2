"""Reading what climate figures need from storage, through the storage contract only.

Counters (``energy``, ``gas_volume``, ``fuel_energy``) are read as hourly ``increase`` buckets,
which rollups answer fast over a year; power and state are read raw, because a trapezoid or a
run length needs every point. Periods are UTC days or calendar months.
"""

import calendar
import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from fabcity.catalogue import canonical_unit
from hub.storage.base import HOUR_MS, BucketStats, ReadingQuery, Storage
from hub.storage.buckets import counter_step, merge, rollup_plan

__all__ = [
    "LOOKBACK_MS",
    "CounterSeries",
    "Period",
    "SeriesName",
    "counters",
    "hourly_stats",
    "period_index",
    "periods",
    "raw_points",
    "year_range",
]

DAY_MS = 24 * HOUR_MS
LOOKBACK_MS = 7 * DAY_MS  # how far back the hourly query looks for the step into a period
NO_LIMIT = 2**62
RAW_PAGE = 100_000

SeriesName = tuple[str, str]  # (device, sensor) within a site
_ORDER = attrgetter("site", "device", "sensor", "metric", "start_ms")  # series, then time


@dataclass(frozen=True, slots=True)
class Period:
    """``[start_ms, end_ms)`` in UTC."""

    start_ms: int
    end_ms: int

    @property
    def hours(self) -> int:
        return (self.end_ms - self.start_ms) // HOUR_MS


def _ms(day: dt.date) -> int:
    return calendar.timegm(day.timetuple()) * 1000


def year_range(year: int) -> tuple[int, int]:
    """``[1 January, 1 January next year)`` in UTC milliseconds."""
    return _ms(dt.date(year, 1, 1)), _ms(dt.date(year + 1, 1, 1))


def periods(start_ms: int, end_ms: int, period: str) -> list[Period]:
    """The UTC days (``day``) or calendar months (``month``) meeting ``[start_ms, end_ms)``,
    clipped to it; ``all``: the range as one period."""
    if period == "all":
        return [Period(start_ms, end_ms)]
    out: list[Period] = []
    day = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).date()
    cursor = day.replace(day=1) if period == "month" else day
    while _ms(cursor) < end_ms:
        if period == "month":
            nxt = dt.date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        else:
            nxt = cursor + dt.timedelta(days=1)
        out.append(Period(max(_ms(cursor), start_ms), min(_ms(nxt), end_ms)))
        cursor = nxt
    return out


def period_index(bounds: Sequence[Period], ts_ms: int) -> int | None:
    """Which period holds ``ts_ms`` (``None``: outside them all)."""
    i = bisect_right(bounds, ts_ms, key=lambda p: p.start_ms) - 1
    return i if i >= 0 and ts_ms < bounds[i].end_ms else None


@dataclass(slots=True)
class CounterSeries:
    """The hourly rise of one counter over a range, and the unit it is stored in."""

    unit: str | None
    hourly: dict[int, float] = field(default_factory=dict)  # hour start -> rise

    def per_period(self, bounds: Sequence[Period]) -> list[tuple[float, float]]:
        """``(rise, coverage)`` per period; coverage is the share of its hours with a
        reading. One pass over the hours in time order, the periods walked alongside."""
        rise = [0.0] * len(bounds)
        hours = [0] * len(bounds)
        ends = [p.end_ms for p in bounds]
        i = 0
        for hour in sorted(self.hourly):
            while i < len(ends) and hour >= ends[i]:
                i += 1
            if i == len(ends):
                break
            if hour >= bounds[i].start_ms:
                rise[i] += self.hourly[hour]
                hours[i] += 1
        return [(r, h / max(1, p.hours)) for r, h, p in zip(rise, hours, bounds, strict=True)]


def hourly_stats(storage: Storage, q: ReadingQuery) -> list[BucketStats]:
    """Bucket statistics of ``q`` per series and hour, ordered by series then hour: the
    rows :meth:`Storage.query` would turn into readings, without building them.

    The rollups answer where they are complete, raw points the rest (as in
    :func:`hub.storage.buckets.downsample`). Rows that are hours already (1-hour rollups,
    hourly statistics) are neither merged nor re-sorted unless parts were stitched.
    """
    q = q.window(q.start_ms, q.end_ms, HOUR_MS)
    plan = rollup_plan(storage, q)
    if plan is None:
        return storage.stats(q)
    resolution, a, b = plan
    parts = []
    if q.start_ms < a:
        parts.append(storage.stats(q.window(q.start_ms, a, resolution)))
    parts.append(storage.read_rollup(resolution, q.window(a, b)))
    if b < q.end_ms:
        parts.append(storage.stats(q.window(b, q.end_ms, resolution)))
    parts = [part for part in parts if part]
    if len(parts) == 1:
        rows = parts[0]
    else:
        rows = [row for part in parts for row in part]
        rows.sort(key=_ORDER)
    return rows if resolution == HOUR_MS else merge(rows, HOUR_MS)


def counters(storage: Storage, site: str, metric: str, start_ms: int, end_ms: int,
             ) -> dict[SeriesName, CounterSeries]:
    """Hourly counter rise of every ``metric`` series of ``site`` in ``[start_ms, end_ms)``.

    A drop is a reset (a restart from zero). The step from the last reading before the range
    to the first inside it belongs to the range, in the hour where that reading lands, however
    long the gap: the query starts :data:`LOOKBACK_MS` early so ordinary data carries its
    step in, and a series silent for longer is looked up once more.

    The hours are the storage's hourly ``increase`` aggregate, computed from its bucket
    statistics directly rather than through :meth:`Storage.query`: a year is 8,760 rows per
    series, and a reading built for each only to be summed again was wasted work.
    """
    q = ReadingQuery(start_ms - LOOKBACK_MS, end_ms, site=site, metric=metric,
                     every_ms=HOUR_MS, agg="increase", limit=NO_LIMIT)
    out: dict[SeriesName, CounterSeries] = {}
    before: set[SeriesName] = set()
    # Site and metric are fixed by the query: (device, sensor) names the series. The rise
    # of an hour is its own increase plus the step from the series' previous hour, as
    # hub.storage.buckets.value_of gives it; a non-finite one yields no reading there.
    last: float | None = None  # the previous hour's last value, within the series
    name: SeriesName = ("", "")
    unit: str | None = None  # of the series' first row, as its readings would carry
    hourly: dict[int, float] = {}
    for row in hourly_stats(storage, q):
        rise = row.increase
        if row.device == name[0] and row.sensor == name[1]:
            if last is not None:
                rise += counter_step(last, row.first)
        else:
            name = (row.device, row.sensor)
            hourly = {}
            unit = None
        last = row.last
        if not math.isfinite(rise):
            continue
        if unit is None:
            unit = canonical_unit(metric, row.unit)
        if row.start_ms < start_ms:
            before.add(name)
            continue
        if not hourly:
            out[name] = CounterSeries(unit, hourly)
        hourly[row.start_ms] = rise
    oldest: list[int | None] = []  # storage.first_ms(), asked at most once
    for name, found in out.items():
        if name not in before:
            _carry_in(storage, site, metric, name, start_ms - LOOKBACK_MS, found, oldest)
    return out


def _carry_in(storage: Storage, site: str, metric: str, name: SeriesName, before_ms: int,
              series: CounterSeries, oldest: list[int | None]) -> None:
    """Add the step from the series' last reading before ``before_ms`` (if any) to its first
    hour in the range. ``oldest`` caches :meth:`Storage.first_ms` between series."""
    if not oldest:
        oldest.append(storage.first_ms())
    first_ms = oldest[0]
    if first_ms is None or first_ms >= before_ms:
        return
    device, sensor = name
    earlier = storage.query(ReadingQuery(
        first_ms, before_ms, site=site, device=device, sensor=sensor, metric=metric,
        every_ms=30 * DAY_MS, agg="last", limit=NO_LIMIT))
    if not earlier:
        return
    first_hour = min(series.hourly)
    first = [r for r in storage.raw(ReadingQuery(
        first_hour, first_hour + HOUR_MS, site=site, device=device, sensor=sensor,
        metric=metric, limit=1))]
    if first:
        series.hourly[first_hour] += counter_step(earlier[-1].value, first[0].value)


def raw_points(storage: Storage, site: str, device: str, sensor: str, metric: str,
               start_ms: int, end_ms: int) -> Iterator[tuple[int, float]]:
    """``(ts_ms, value)`` of one series in ``[start_ms, end_ms)``, in time order, in pages."""
    cursor = start_ms
    while cursor < end_ms:
        page = storage.raw(ReadingQuery(cursor, end_ms, site=site, device=device,
                                        sensor=sensor, metric=metric, limit=RAW_PAGE))
        for r in page:
            yield r.ts_ms, r.value
        if len(page) < RAW_PAGE:
            return
        cursor = page[-1].ts_ms + 1
