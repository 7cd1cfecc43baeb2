"""Readings straight to JSON or CSV text, without a pydantic model per row.

Answers of tens of thousands of readings spend most of their time turning rows into text, so
timestamps are formatted from a per-day cache and rows are encoded by orjson (C) or the csv
module (C). JSON rows are written straight from the reading tuples (:func:`readings_json`):
the text shared by the rows of one series, the timestamps by minute and the values in one
orjson call, no dict per row. The output is exactly what the response models describe.
"""

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from fabcity.reading import Reading
from hub.storage.base import SeriesNames

__all__ = ["CSV_COLUMNS", "bucket_values_json", "csv_rows", "json_bytes", "reading_dicts",
           "readings_json", "series_json", "ts_formatter"]

CSV_COLUMNS = ("site", "device", "sensor", "metric", "ts", "value", "unit", "flags")
DAY_MS = 86_400_000
_OFFSET_STEP_MS = 900_000  # UTC offsets change on quarter-hour boundaries at the finest
_EPOCH_DAY = date(1970, 1, 1)


def _clock(ms_of_day: int) -> str:
    seconds, milli = divmod(ms_of_day, 1000)
    minutes, sec = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{sec:02d}.{milli:03d}"


def _offset_text(offset_ms: int) -> str:
    sign = "+" if offset_ms >= 0 else "-"
    minutes = abs(offset_ms) // 60_000
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def ts_formatter(zone: ZoneInfo | None = None) -> Callable[[int], str]:
    """A function turning epoch milliseconds into RFC 3339 with milliseconds: UTC with ``Z``
    (as :func:`fabcity.reading.format_ts`), or local time in ``zone`` with its offset."""
    days: dict[int, str] = {}
    offsets: dict[int, int] = {}

    def day_text(day: int) -> str:
        text = days.get(day)
        if text is None:
            text = days[day] = (_EPOCH_DAY + timedelta(days=day)).isoformat()
        return text

    if zone is None:
        def utc(ts_ms: int) -> str:
            day, rest = divmod(ts_ms, DAY_MS)
            return f"{day_text(day)}T{_clock(rest)}Z"
        return utc

    def offset_ms(ts_ms: int) -> int:
        step = ts_ms // _OFFSET_STEP_MS
        found = offsets.get(step)
        if found is None:
            at = datetime.fromtimestamp(step * _OFFSET_STEP_MS / 1000, UTC).astimezone(zone)
            delta = at.utcoffset() or timedelta(0)
            found = offsets[step] = int(delta.total_seconds() * 1000)
        return found

    def local(ts_ms: int) -> str:
        off = offset_ms(ts_ms)
        day, rest = divmod(ts_ms + off, DAY_MS)
        return f"{day_text(day)}T{_clock(rest)}{_offset_text(off)}"
    return local


def reading_dicts(readings: Iterable[Reading]) -> list[dict[str, Any]]:
    """Rows shaped as ``ReadingPublic`` (same keys, same order), timestamps in UTC."""
    fmt = ts_formatter()
    return [{"site": r[0], "device": r[1], "sensor": r[2], "metric": r[3], "ts": fmt(r[5]),
             "value": r[4], "unit": r[6], "flags": list(r[7])} for r in readings]


#: ``HH:MM:`` of each minute of a day, and ``SS.mmmZ`` of each millisecond of a minute as met.
_HOUR_MINUTE = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_SECOND_MS: dict[int, str] = {}

# The pieces of a row's text, each made once per distinct value (the writers cache them):
# ``{head}{date}T{HH:MM:}{SS.mmmZ}","value":{value},{end}``.


def _head(site: str, device: str, sensor: str, metric: str) -> str:
    """A row's text up to the opening quote of its ``ts``."""
    return orjson.dumps({"site": site, "device": device, "sensor": sensor, "metric": metric,
                         "ts": ""}).decode()[:-2]


def _end(unit: str | None, flags: list[str]) -> str:
    """A row's text from ``"unit"`` to its closing brace."""
    return orjson.dumps({"unit": unit, "flags": flags}).decode()[1:]


def _date_t(day: int) -> str:
    """``YYYY-MM-DDT`` of a day since the epoch."""
    return f"{(_EPOCH_DAY + timedelta(days=day)).isoformat()}T"


def _minute_text(minute: int) -> str:
    """``YYYY-MM-DDTHH:MM:`` of a minute since the epoch."""
    day, minute_of_day = divmod(minute, 1440)
    return _date_t(day) + _HOUR_MINUTE[minute_of_day]


def _seconds_text(ms_of_minute: int) -> str:
    """``SS.mmmZ`` of a millisecond of a minute, kept for next time."""
    text = _SECOND_MS[ms_of_minute] = f"{ms_of_minute // 1000:02d}.{ms_of_minute % 1000:03d}Z"
    return text


def _value_texts(values: list[float]) -> list[str]:
    """The JSON number text of every value, in one orjson call split at the commas."""
    return orjson.dumps(values)[1:-1].decode().split(",")


def readings_json(readings: Sequence[Reading]) -> bytes:
    """The JSON array of :func:`reading_dicts` (byte for byte what ``orjson.dumps`` makes of
    it), written without building the dicts."""
    if not readings:
        return b"[]"
    values = _value_texts([r[4] for r in readings])
    heads: dict[tuple[str, str, str, str], str] = {}
    ends: dict[tuple[str | None, tuple[str, ...]], str] = {}
    seconds = _SECOND_MS
    hour_minute = _HOUR_MINUTE
    day = None
    date_t = ""
    rows: list[str] = []
    add = rows.append
    for (site, device, sensor, metric, _, ts_ms, unit, flags), value in zip(
            readings, values, strict=True):
        names = (site, device, sensor, metric)
        head = heads.get(names)
        if head is None:
            head = heads[names] = _head(*names)
        end = ends.get((unit, flags))
        if end is None:
            end = ends[(unit, flags)] = _end(unit, list(flags))
        ts_day, ms_of_day = divmod(ts_ms, DAY_MS)
        if ts_day != day:
            day = ts_day
            date_t = _date_t(day)
        minute, ms_of_minute = divmod(ms_of_day, 60_000)
        tail = seconds.get(ms_of_minute) or _seconds_text(ms_of_minute)
        add(f'{head}{date_t}{hour_minute[minute]}{tail}","value":{value},{end}')
    return f"[{','.join(rows)}]".encode()


def series_json(names: tuple[str, str, str, str], unit: str | None,
                rows: Sequence[tuple[int, float, str | None]]) -> bytes:
    """:func:`readings_json` of one series' ``(ts_ms, value, flags)`` rows (``flags``
    comma-joined or None, as stored), byte for byte, without a :class:`Reading` per row."""
    if not rows:
        return b"[]"
    values = _value_texts([r[1] for r in rows])
    head = _head(*names)
    ends: dict[str | None, str] = {}
    seconds = _SECOND_MS
    starts: dict[int, str] = {}  # epoch minute -> the row's text up to the seconds
    rows_text: list[str] = []
    add = rows_text.append
    for (ts_ms, _, flags), value in zip(rows, values, strict=True):
        end = ends.get(flags)
        if end is None:
            end = ends[flags] = _end(unit, flags.split(",") if flags else [])
        minute, ms_of_minute = divmod(ts_ms, 60_000)
        start = starts.get(minute)
        if start is None:
            start = starts[minute] = head + _minute_text(minute)
        tail = seconds.get(ms_of_minute) or _seconds_text(ms_of_minute)
        add(f'{start}{tail}","value":{value},{end}')
    return f"[{','.join(rows_text)}]".encode()


def bucket_values_json(names: Mapping[int, SeriesNames],
                       rows: Sequence[tuple[int, int, float]]) -> bytes:
    """:func:`readings_json` of downsampled buckets given as ``(series id, start_ms, value)``
    rows and the ``names`` of each id (:class:`hub.storage.base.RollupValues`), byte for
    byte, without a :class:`Reading` per bucket."""
    if not rows:
        return b"[]"
    values = _value_texts([r[2] for r in rows])
    starts: dict[int, str] = {}  # epoch minute -> date and time up to the seconds
    seconds = _SECOND_MS
    rows_text: list[str] = []
    add = rows_text.append
    current = None
    head = end = ""
    for (series, ts_ms, _), value in zip(rows, values, strict=True):
        if series != current:  # rows come series by series
            current = series
            site, device, sensor, metric, unit = names[series]
            head, end = _head(site, device, sensor, metric), _end(unit, [])
        minute, ms_of_minute = divmod(ts_ms, 60_000)
        start = starts.get(minute)
        if start is None:
            start = starts[minute] = _minute_text(minute)
        tail = seconds.get(ms_of_minute) or _seconds_text(ms_of_minute)
        add(f'{head}{start}{tail}","value":{value},{end}')
    return f"[{','.join(rows_text)}]".encode()


def json_bytes(body: Any) -> bytes:
    """Compact JSON of plain data (dicts, lists, strings, numbers)."""
    return orjson.dumps(body)


def csv_rows(readings: Sequence[Reading], fmt: Callable[[int], str]) -> str:
    """CSV lines (no header) of ``readings``; values keep every digit (``repr``)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        (r[0], r[1], r[2], r[3], fmt(r[5]), repr(r[4]), r[6] or "", " ".join(r[7]))
        for r in readings)
    return out.getvalue()
