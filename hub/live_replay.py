"""Resuming the live stream: what a reconnecting client missed, read back from storage.

A client resumes from the event id it last received (``Last-Event-ID``), a cursor
``(ts_ms, site, device, sensor, metric)`` (:mod:`hub.live`). The replay is every stored reading
of its filter above that cursor, in cursor order, bounded two ways:

- by age: nothing older than ``REPLAY_MAX_AGE_S`` before now (a client away for an hour
  fetches the hour from ``/api/v1/readings``);
- by count: at most ``REPLAY_MAX_READINGS``; when more were missed, the window starts later,
  at the earliest millisecond that leaves at most that many (a binary search of queries).

Whatever a bound cut off is reported as a gap ``[from, to)`` so the client can fetch it.

No gap and no duplicate at the seam: the client is subscribed to the live fan-out *before*
the storage query starts, so a batch stored after the query is delivered live; a live batch
that may also be in the replay (published up to one batch after the query ended) is checked
against the replayed cursors (:attr:`hub.live.Subscription.dedupe`). That needs storage to
return what it acknowledged as written (true of SQLite and InfluxDB).
"""

from dataclasses import dataclass

from hub.live import Cursor, Item, LiveFilter, encode
from hub.storage.base import ReadingQuery, Storage

__all__ = ["REPLAY_MAX_AGE_S", "REPLAY_MAX_READINGS", "Replay", "replay"]

REPLAY_MAX_READINGS = 10_000
REPLAY_MAX_AGE_S = 900
FUTURE_MS = 86_400_000  # readings may be stamped ahead of the hub's clock (ingest.max_future_s)
MAX_NARROWING = 32  # steps of the binary search for the start (2**32 ms: any window)


@dataclass(frozen=True, slots=True)
class Replay:
    """Readings to send, in cursor order, and the span ``[from_ms, to_ms)`` left out."""

    items: list[Item]
    gap: tuple[int, int] | None


def replay(storage: Storage, flt: LiveFilter, cursor: Cursor, now_ms: int,
           max_readings: int = REPLAY_MAX_READINGS,
           max_age_s: float = REPLAY_MAX_AGE_S) -> Replay:
    """Stored readings of ``flt`` above ``cursor``, bounded (module docstring). Blocking:
    run it in a worker thread. Raises ``StorageUnavailable`` like any query."""
    start = max(cursor[0], now_ms - int(max_age_s * 1000))
    query = ReadingQuery(start_ms=start, end_ms=now_ms + FUTURE_MS, site=flt.site,
                         device=flt.device, metric=flt.metric, limit=max_readings + 1)
    found = storage.raw(query)
    if len(found) > max_readings:  # too many: the earliest start leaving at most that many
        lo, start = start, now_ms
        found = storage.raw(query.window(start, query.end_ms))
        steps = MAX_NARROWING
        if len(found) > max_readings:
            found, steps = [], 0  # even what is stamped from now on is too much: skip to live
        for _ in range(steps):
            if start - lo <= 1:
                break
            mid = (lo + start) // 2
            candidate = storage.raw(query.window(mid, query.end_ms))
            if len(candidate) <= max_readings:
                start, found = mid, candidate
            else:
                lo = mid
    items = sorted(encode(r) for r in found
                   if (r.ts_ms, r.site, r.device, r.sensor, r.metric) > cursor)
    return Replay(items, (cursor[0], start) if start > cursor[0] else None)
