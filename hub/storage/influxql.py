"""The read path of both InfluxDB back-ends: InfluxQL over the v1 ``/query`` endpoint.

Every method answers exactly as the same-named method of :class:`hub.storage.base.Storage`
(and as SQLite does): series ordered by (site, device, sensor, metric), then time;
``[start, end)`` ranges; ``limit`` over the whole answer. InfluxDB orders series by its own
tag-set key, so answers are sorted here.

Bucket statistics take two statements in one request: the plain aggregates per bucket, and
the drops of each series (a counter reset) with the value before each (``MOVING_AVERAGE(value,
2) - DIFFERENCE(value) / 2``: InfluxQL cannot select a point's value beside a transformation).
The rises between consecutive points inside a bucket add up to ``last - first`` plus the size
of every drop; a drop counts the value after it instead, so the bucket's ``increase`` is
``last - first`` plus the value before each drop inside it. A drop onto the bucket's first point
crosses in from the bucket before and is taken back out.
"""

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fabcity.errors import BadReading, StorageUnavailable
from fabcity.reading import Reading
from hub.storage.base import SUM_SCALE, BucketStats, ReadingQuery
from hub.storage.influxhttp import InfluxHTTP, error_text

__all__ = ["InfluxQL", "Series", "identifier", "string_literal"]

CHUNK_ROWS = 10_000  # rows per chunk of a chunked answer
_TAGS = '"site","device","sensor","unit"'
_STAT_FIELDS = ("count", "sum", "min", "max", "first", "last", "increase")
# InfluxDB keeps nanoseconds in an int64: ranges are clamped to what it can express.
_MIN_MS, _MAX_MS = -9_223_372_036_000, 9_223_372_036_000

SeriesId = tuple[str, str, str, str, str | None]  # (site, device, sensor, metric, unit)


def identifier(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string_literal(text: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(slots=True)
class Series:
    """One series of an InfluxQL answer, its chunks joined."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]] = field(default_factory=list)

    @property
    def id(self) -> SeriesId:
        tags = self.tags
        return (tags.get("site", ""), tags.get("device", ""), tags.get("sensor", ""),
                self.name, tags.get("unit") or None)


class _Unrepresentable(StorageUnavailable):
    """InfluxDB computed an infinite number (a sum beyond the float range) and could not
    write its answer as JSON: the statement fails on every try, so it is not "retry later"."""


#: Values beyond this may overflow when added; below it ~1.7e8 of them fit in one sum.
HUGE = "1" + "0" * 300 + ".0"  # 1e300 written out: InfluxQL has no exponent notation
DROP_SCALE = 4.0  # a power of two: dividing by it is exact, and halves of sums fit


def _number(value: Any) -> float:
    """A stored rollup statistic; a missing one was beyond the float range (NaN)."""
    return math.nan if value is None else float(value)


def _sorted(series: Iterable[Series]) -> list[Series]:
    return sorted(series, key=lambda s: (s.id[:4], s.id[4] or ""))


def _reading(sid: SeriesId, ts_ms: int, value: Any, flags: Any) -> Reading | None:
    site, device, sensor, metric, unit = sid
    try:
        return Reading(site, device, sensor, metric, float(value), int(ts_ms), unit,
                       tuple(flags.split(",")) if flags else ())
    except BadReading:  # not written by fabcity (another client's measurement): skip it
        return None


class InfluxQL:
    """Queries against one database: raw points in ``raw_rp``, rollups in ``rollup_rps``."""

    def __init__(
        self,
        url: str,
        database: str,
        raw_rp: str,
        rollup_rps: dict[int, str],
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        verify_ssl: bool = True,
        credentials_hint: str = "check the configured credentials",
    ) -> None:
        self.database = database
        self.raw_rp = raw_rp
        self.rollup_rps = dict(rollup_rps)
        self.http = InfluxHTTP(url, headers, timeout_s, verify_ssl, credentials_hint)

    # -- transport ----------------------------------------------------------------------
    def select(self, statement: str) -> list[list[Series]]:
        """Run one or more ``;``-separated read statements; one list of series each."""
        response = self.http.request("GET", "/query", {
            "db": self.database, "q": statement, "epoch": "ms", "chunked": "true",
            "chunk_size": str(CHUNK_ROWS)})
        return self._answer(response.status, response.data, lambda: error_text(response),
                            reading=True)

    def execute(self, statement: str) -> list[list[Series]]:
        """Run a statement that changes something (DDL), with POST as InfluxDB requires."""
        response = self.http.request("POST", "/query", {"q": statement, "epoch": "ms"})
        return self._answer(response.status, response.data, lambda: error_text(response))

    def _answer(self, status: int, data: bytes, text: Any, reading: bool = False,
                ) -> list[list[Series]]:
        """Decode an answer. When ``reading``, a database that does not exist yet holds
        nothing (InfluxDB 3.x creates one on its first write; 2.x needs its DBRP mapping
        first); a write to it still fails loudly."""
        if status != 200:
            raise StorageUnavailable(f"InfluxQL query refused (HTTP {status}): {text()}")
        results: dict[int, dict[tuple[str, tuple[tuple[str, str], ...]], Series]] = {}
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as exc:
                if b"unsupported value" in line:  # Go's encoder refuses +Inf and NaN
                    raise _Unrepresentable(f"InfluxQL answer has a non-finite number: "
                                           f"{line[:200]!r}") from exc
                raise StorageUnavailable(f"InfluxQL answer is not JSON: {exc}") from exc
            if doc.get("error"):
                raise StorageUnavailable(f"InfluxQL query failed: {doc['error']}")
            for result in doc.get("results") or ():
                error = result.get("error")
                found = results.setdefault(int(result.get("statement_id", 0)), {})
                if error and reading and str(error).startswith("database not found"):
                    continue
                if error:
                    raise StorageUnavailable(f"InfluxQL query failed: {error}")
                for raw in result.get("series") or ():
                    tags = raw.get("tags") or {}
                    key = (raw.get("name", ""), tuple(sorted(tags.items())))
                    series = found.get(key)
                    if series is None:
                        found[key] = Series(key[0], tags, raw.get("columns", []),
                                            list(raw.get("values") or ()))
                    else:
                        series.values.extend(raw.get("values") or ())
        return [list(results.get(i, {}).values()) for i in range(max(results, default=-1) + 1)]

    def ping(self) -> str:
        """``"ok"`` when the server answers ``/ping``, else what is wrong."""
        try:
            response = self.http.request("GET", "/ping")
        except StorageUnavailable as exc:
            return str(exc)
        if response.status != 204:
            return f"InfluxDB /ping answered HTTP {response.status}: {error_text(response)}"
        return "ok"

    def close(self) -> None:
        self.http.close()

    # -- statements ---------------------------------------------------------------------
    def _source(self, rp: str, metric: str | None) -> str:
        measurement = identifier(metric) if metric is not None else "/.*/"
        return f"{identifier(self.database)}.{identifier(rp)}.{measurement}"

    @staticmethod
    def _filters(**tags: str | None) -> list[str]:
        return [f"{identifier(tag)} = {string_literal(value)}"
                for tag, value in tags.items() if value is not None]

    @staticmethod
    def _range(q: ReadingQuery) -> str:
        start = min(max(q.start_ms, _MIN_MS), _MAX_MS)
        end = min(max(q.end_ms, _MIN_MS), _MAX_MS)
        return f"time >= {start}ms AND time < {end}ms"

    def _where(self, q: ReadingQuery) -> str:
        clauses = self._filters(site=q.site, device=q.device, sensor=q.sensor)
        return " AND ".join([*clauses, self._range(q)])

    # -- the Storage read primitives ----------------------------------------------------
    def raw(self, q: ReadingQuery) -> list[Reading]:
        """Raw readings, as :meth:`hub.storage.base.Storage.raw`."""
        if q.limit <= 0 or q.start_ms >= q.end_ms:
            return []
        (answer,) = self.select(
            f'SELECT "value","flags" FROM {self._source(self.raw_rp, q.metric)} '
            f"WHERE {self._where(q)} GROUP BY {_TAGS} ORDER BY time ASC LIMIT {int(q.limit)}")
        out: list[Reading] = []
        for series in _sorted(answer):
            sid = series.id
            value_at, flags_at = series.columns.index("value"), series.columns.index("flags")
            for row in series.values:
                reading = _reading(sid, row[0], row[value_at], row[flags_at])
                if reading is not None:
                    out.append(reading)
                    if len(out) >= q.limit:
                        return out
        return out

    def stats(self, q: ReadingQuery) -> list[BucketStats]:
        """Bucket statistics, as :meth:`hub.storage.base.Storage.stats`."""
        if q.every_ms is None or q.every_ms <= 0:
            raise ValueError("stats needs every_ms > 0")
        if q.start_ms >= q.end_ms:
            return []
        every_ms = int(q.every_ms)
        source, where = self._source(self.raw_rp, q.metric), self._where(q)
        group = f"GROUP BY time({every_ms}ms),{_TAGS} fill(none)"
        try:
            main, drops = self.select(
                f'SELECT COUNT("value"),SUM("value"),MIN("value"),MAX("value"),'
                f'FIRST("value"),LAST("value") FROM {source} WHERE {where} {group};'
                + self._drops(source, q))
            scale = 1.0
        except _Unrepresentable:
            main, drops = self._huge_stats(source, q, group)
            scale = DROP_SCALE
        before_drop: dict[tuple[SeriesId, int], float] = {}  # (series, bucket) -> sum
        for series in drops:
            sid = series.id
            for ts, d, m in series.values:  # m = (before + after) / 2, d = after - before
                key = (sid, int(ts) // every_ms * every_ms)  # (both divided by scale)
                before = (float(m) - float(d) / 2) * scale
                before_drop[key] = before_drop.get(key, 0.0) + before
        out: list[BucketStats] = []
        for series in _sorted(main):
            sid = series.id
            previous: BucketStats | None = None
            for start, count, total, low, high, first, last in series.values:
                row = BucketStats(*sid[:4], sid[4], int(start), int(count), float(total),
                                  float(low), float(high), float(first), float(last), 0.0)
                # The steps inside a bucket add up to last - first; a drop counts the value
                # after it instead of its (negative) size: it adds the value before it.
                row.increase = row.last - row.first + before_drop.get((sid, row.start_ms), 0.0)
                if previous is not None and row.first < previous.last:
                    row.increase -= previous.last  # the drop into this bucket is not inside
                out.append(row)
                previous = row
        return out

    def _drops(self, source: str, q: ReadingQuery, field: str = "value") -> str:
        """The statement finding counter drops (see the module docstring) in ``field`` of
        ``source`` (a measurement or a subquery)."""
        return (f'SELECT "d","m" FROM (SELECT DIFFERENCE({identifier(field)}) AS "d",'
                f'MOVING_AVERAGE({identifier(field)},2) AS "m" FROM {source} '
                f"WHERE {self._where(q)} GROUP BY {_TAGS}) WHERE \"d\" < 0 AND "
                f"{self._range(q)} GROUP BY {_TAGS}")

    def _huge_stats(self, source: str, q: ReadingQuery, group: str,
                    ) -> tuple[list[Series], list[Series]]:
        """Bucket statistics when values near the float limit made a sum overflow: sums of
        the ordinary values where a bucket holds none beyond :data:`HUGE`, sums of the values
        divided by :data:`~hub.storage.base.SUM_SCALE` where it does (as SQLite adds a bucket
        whose sum overflowed), and drops found on values divided by 4,
        which can neither overflow nor lose precision."""
        where = self._where(q)
        main, small, huge, drops = self.select(
            f'SELECT COUNT("value"),MIN("value"),MAX("value"),FIRST("value"),LAST("value") '
            f"FROM {source} WHERE {where} {group};"
            f'SELECT SUM("value") FROM {source} WHERE {where} AND "value" >= -{HUGE} AND '
            f'"value" <= {HUGE} {group};'
            f'SELECT COUNT("value") FROM {source} WHERE {where} AND ("value" < -{HUGE} OR '
            f'"value" > {HUGE}) {group};'
            + self._drops(f'(SELECT "value" / {DROP_SCALE!r} AS "scaled" FROM {source} '
                          f"WHERE {where} GROUP BY {_TAGS})", q, "scaled"))
        sums = {(s.id, int(row[0])): float(row[1]) for s in small for row in s.values}
        if huge:
            (scaled,) = self.select(
                f'SELECT SUM("scaled") FROM (SELECT "value" / {SUM_SCALE!r} AS "scaled" '
                f"FROM {source} WHERE {where} GROUP BY {_TAGS}) WHERE {self._range(q)} "
                f"{group}")
            scaled_sums = {(s.id, int(row[0])): float(row[1]) for s in scaled
                           for row in s.values}
            for s in huge:
                for row in s.values:
                    key = (s.id, int(row[0]))
                    # Infinity when the sum does not fit, as in SQLite.
                    sums[key] = scaled_sums.get(key, math.inf) * SUM_SCALE
        for s in main:
            s.values = [[start, count, sums.get((s.id, int(start)), 0.0), *rest]
                        for start, count, *rest in s.values]
        return main, drops

    def latest(
        self, site: str | None = None, device: str | None = None, metric: str | None = None
    ) -> list[Reading]:
        """The newest reading per series, as :meth:`hub.storage.base.Storage.latest`."""
        clauses = self._filters(site=site, device=device)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        (answer,) = self.select(f'SELECT LAST("value"),"flags" FROM '
                                f"{self._source(self.raw_rp, metric)}{where} GROUP BY {_TAGS}")
        newest: dict[tuple[str, str, str, str], Reading] = {}
        for series in _sorted(answer):
            for row in series.values[-1:]:
                reading = _reading(series.id, row[0], row[1], row[2])
                if reading is None:
                    continue
                key = reading[:4]  # a unit change makes two InfluxDB series of one key
                if key not in newest or newest[key].ts_ms <= reading.ts_ms:
                    newest[key] = reading
        return [newest[key] for key in sorted(newest)]

    def read_rollup(self, resolution_ms: int, q: ReadingQuery) -> list[BucketStats]:
        """Stored rollup rows, as :meth:`hub.storage.base.Storage.read_rollup`."""
        rp = self.rollup_rps.get(resolution_ms)
        if rp is None:
            raise ValueError(f"no rollup retention policy for {resolution_ms} ms")
        if q.start_ms >= q.end_ms:
            return []
        fields = ",".join(identifier(name) for name in _STAT_FIELDS)
        (answer,) = self.select(f"SELECT {fields} FROM {self._source(rp, q.metric)} "
                                f"WHERE {self._where(q)} GROUP BY {_TAGS}")
        out: list[BucketStats] = []
        for series in _sorted(answer):
            sid = series.id
            for start, count, total, low, high, first, last, increase in series.values:
                if count is None:  # a point without rollup fields: not ours
                    continue
                out.append(BucketStats(*sid[:4], sid[4], int(start), int(count),
                                       _number(total), float(low), float(high), float(first),
                                       float(last), _number(increase)))
        return out

    def first_ms(self) -> int | None:
        """Time of the oldest raw point, or ``None`` when there is none."""
        (answer,) = self.select(f'SELECT FIRST("value") FROM {self._source(self.raw_rp, None)}')
        times = [int(row[0]) for series in answer for row in series.values[:1]]
        return min(times, default=None)
