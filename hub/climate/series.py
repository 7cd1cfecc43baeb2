"""Reading what climate figures need from storage, through the storage contract only.

Counters (``energy``, ``gas_volume``, ``fuel_energy``) are read as hourly ``increase`` buckets,
which rollups answer fast over a year; power and state are read raw, because a trapezoid or a
run length needs every point. Periods are UTC days or calendar months.
"""

import calendar
import datetime as dt
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from hub.storage.base import HOUR_MS, ReadingQuery, Storage
from hub.storage.buckets import counter_step

__all__ = [
    "LOOKBACK_MS",
    "CounterSeries",
    "Period",
    "SeriesName",
    "counters",
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
        reading."""
        rise = [0.0] * len(bounds)
        hours = [0] * len(bounds)
        for hour, value in self.hourly.items():
            i = period_index(bounds, hour)
            if i is not None:
                rise[i] += value
                hours[i] += 1
        return [(r, h / max(1, p.hours)) for r, h, p in zip(rise, hours, bounds, strict=True)]


def counters(storage: Storage, site: str, metric: str, start_ms: int, end_ms: int,
             ) -> dict[SeriesName, CounterSeries]:
    """Hourly counter rise of every ``metric`` series of ``site`` in ``[start_ms, end_ms)``.

    A drop is a reset (a restart from zero). The step from the last reading before the range
    to the first inside it belongs to the range, in the hour where that reading lands, however
    long the gap: the query starts :data:`LOOKBACK_MS` early so ordinary data carries its
    step in, and a series silent for longer is looked up once more.
    """
    q = ReadingQuery(start_ms - LOOKBACK_MS, end_ms, site=site, metric=metric,
                     every_ms=HOUR_MS, agg="increase", limit=NO_LIMIT)
    out: dict[SeriesName, CounterSeries] = {}
    before: set[SeriesName] = set()
    for r in storage.query(q):
        name = (r.device, r.sensor)
        if r.ts_ms < start_ms:
            before.add(name)
            continue
        series = out.setdefault(name, CounterSeries(r.unit))
        series.hourly[r.ts_ms] = r.value
    for name, series in out.items():
        if name not in before:
            _carry_in(storage, site, metric, name, start_ms - LOOKBACK_MS, end_ms, series)
    return out


def _carry_in(storage: Storage, site: str, metric: str, name: SeriesName, before_ms: int,
              end_ms: int, series: CounterSeries) -> None:
    """Add the step from the series' last reading before ``before_ms`` (if any) to its first
    hour in the range."""
    oldest = storage.first_ms()
    if oldest is None or oldest >= before_ms:
        return
    device, sensor = name
    earlier = storage.query(ReadingQuery(
        oldest, before_ms, site=site, device=device, sensor=sensor, metric=metric,
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
