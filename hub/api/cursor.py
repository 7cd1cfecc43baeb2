"""Paging through an answer longer than ``limit``: an opaque cursor and the reads after it.

A cursor names the last reading returned, ``(site, device, sensor, metric, ts)``; answers are
ordered by exactly that key, so "everything after it" is well defined and no reading is
skipped or repeated however the answer is cut. Storage can only filter by equality, so the
rest of an answer is read as: the rest of the cursor's series, then every later group of
series (the sensor's other metrics, the device's other sensors, the site's other devices,
the other sites), each group one storage query. The groups are found from
``storage.latest()``, which lists every series the storage holds.
"""

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

from fabcity.names import SENSOR_RE, SITE_RE
from fabcity.reading import Reading
from hub.api.errors import ApiError
from hub.storage.base import ReadingQuery, SeriesKey, Storage

__all__ = ["Cursor", "read_after", "series_of", "stream_pages"]

_RULE = "pass the `next` value of the previous page unchanged"


@dataclass(frozen=True, slots=True)
class Cursor:
    """The identity of the last reading of a page (``ts`` is a bucket start when downsampled)."""

    site: str
    device: str
    sensor: str
    metric: str
    ts_ms: int

    @property
    def series(self) -> SeriesKey:
        return (self.site, self.device, self.sensor, self.metric)

    @classmethod
    def after(cls, r: Reading) -> "Cursor":
        return cls(r.site, r.device, r.sensor, r.metric, r.ts_ms)

    def encode(self) -> str:
        raw = json.dumps([self.site, self.device, self.sensor, self.metric, self.ts_ms],
                         separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        """Parse a cursor, answering 422 naming ``cursor`` when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            site, device, sensor, metric, ts_ms = json.loads(raw)
        except (binascii.Error, ValueError, TypeError):
            raise ApiError("cursor", f"not a cursor of this API: {_RULE}") from None
        names_ok = (isinstance(site, str) and SITE_RE.fullmatch(site)
                    and isinstance(device, str) and SITE_RE.fullmatch(device)
                    and isinstance(sensor, str) and SENSOR_RE.fullmatch(sensor)
                    and isinstance(metric, str) and SENSOR_RE.fullmatch(metric))
        if not names_ok or type(ts_ms) is not int:
            raise ApiError("cursor", f"not a cursor of this API: {_RULE}")
        return cls(site, device, sensor, metric, ts_ms)

    def check(self, q: ReadingQuery) -> None:
        """Refuse a cursor that cannot come from an answer to ``q`` (other filters or range)."""
        for name in ("site", "device", "sensor", "metric"):
            wanted = getattr(q, name)
            if wanted is not None and wanted != getattr(self, name):
                raise ApiError("cursor", f"belongs to another query ({name} differs): {_RULE}")
        first = q.start_ms // q.every_ms * q.every_ms if q.every_ms else q.start_ms
        if not first <= self.ts_ms < q.end_ms:
            raise ApiError("cursor", f"lies outside [start, end) of this query: {_RULE}")


def series_of(storage: Storage, q: ReadingQuery) -> list[SeriesKey]:
    """Every stored series matching ``q``'s filters, in answer order."""
    keys = {(r.site, r.device, r.sensor, r.metric)
            for r in storage.latest(site=q.site, device=q.device, metric=q.metric)}
    return sorted(k for k in keys if q.sensor is None or k[2] == q.sensor)


def _groups(after: SeriesKey, keys: list[SeriesKey]) -> Iterator[tuple[str | None, ...]]:
    """Filters (None: keep the query's) covering every series after ``after``, in order."""
    site, device, sensor, _ = after
    later = [k for k in keys if k > after]
    yield from ((site, device, sensor, k[3]) for k in later if k[:3] == (site, device, sensor))
    yield from sorted({(site, device, k[2], None) for k in later
                       if k[:2] == (site, device) and k[2] > sensor})
    yield from sorted({(site, k[1], None, None) for k in later
                       if k[0] == site and k[1] > device})
    yield from sorted({(k[0], None, None, None) for k in later if k[0] > site})


def _narrowed(q: ReadingQuery, group: tuple[str | None, ...], limit: int) -> ReadingQuery:
    site, device, sensor, metric = group
    return replace(q, site=site or q.site, device=device or q.device,
                   sensor=sensor or q.sensor, metric=metric or q.metric, limit=limit)


def read_after(storage: Storage, q: ReadingQuery, cursor: Cursor | None, n: int,
               keys: list[SeriesKey] | None = None) -> list[Reading]:
    """The first ``n`` readings of ``q``'s answer that come after ``cursor`` (all of them
    from the start when ``cursor`` is None). ``keys``: :func:`series_of`, if known."""
    if cursor is None:
        return storage.query(replace(q, limit=n))
    # The rest of the cursor's own series. Downsampled, the query restarts at the cursor's
    # bucket (so a counter's increase still sees the bucket before) and drops that bucket.
    same = replace(q, site=cursor.site, device=cursor.device, sensor=cursor.sensor,
                   metric=cursor.metric)
    if q.every_ms is None:
        rest = storage.query(replace(same, start_ms=max(q.start_ms, cursor.ts_ms + 1), limit=n))
    else:
        rest = [r for r in storage.query(replace(same, start_ms=max(q.start_ms, cursor.ts_ms),
                                                 limit=n + 1)) if r.ts_ms > cursor.ts_ms]
    out = rest[:n]
    if len(out) >= n:
        return out
    for group in _groups(cursor.series, series_of(storage, q) if keys is None else keys):
        out += storage.query(_narrowed(q, group, n - len(out)))
        if len(out) >= n:
            break
    return out


def stream_pages(storage: Storage, q: ReadingQuery, page_size: int,
                 after: Cursor | None = None) -> Iterator[list[Reading]]:
    """The whole answer after ``after`` (from the start if None), one storage page at a time;
    the series are listed once for the whole stream."""
    keys: list[SeriesKey] | None = None
    cursor = after
    while True:
        size = page_size
        if cursor is not None and keys is None:
            keys = series_of(storage, q)
        page = read_after(storage, q, cursor, size, keys)
        if page:
            yield page
        if len(page) < size:
            return
        cursor = Cursor.after(page[-1])
