"""The live stream: every stored reading, pushed to server-sent-event clients as it is stored.

Ingest's store thread calls :meth:`LiveBroadcaster.publish` once per batch, after the batch
is durable and acked. With nobody listening that is a counter increment and nothing else.
Otherwise the batch is handed, in one ``call_soon_threadsafe``, to the API's event loop, where
the fan-out runs: readings are encoded once, filtered once per distinct filter, and rendered
once per filter into a chunk of frames that every client of that filter shares. Each client
holds at most ``queue_max`` undelivered events; a client that falls that far behind is
dropped and told where to resume, so a slow client never slows ingest or another client.

Event ids are cursors ``<ts_ms>/<site>/<device>/<sensor>/<metric>`` ordered by that tuple. The
id of an event is the largest cursor the connection has been sent so far (a high-water mark),
so ids never go back and a resume (:mod:`hub.live_replay`) replays from storage exactly the
readings above it: nothing twice. The price: a *late* reading (its ``ts`` not above the mark,
e.g. an edge agent emptying its buffer after an outage) that is stored while the client is
away is not replayed. Connected clients do receive late readings live.
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from fabcity.names import SENSOR_RE, SITE_RE
from fabcity.reading import Reading, format_ts

__all__ = [
    "DEFAULT_KEEPALIVE_S",
    "DEFAULT_QUEUE_MAX",
    "DEFAULT_RETRY_MS",
    "KEEPALIVE_FRAME",
    "Cursor",
    "LiveBroadcaster",
    "LiveFilter",
    "Subscription",
    "dropped_frame",
    "format_cursor",
    "parse_cursor",
    "render",
]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_MAX = 1_000  # undelivered events a client may hold before it is dropped
DEFAULT_KEEPALIVE_S = 15.0  # proxies close connections idle for ~30-60 s
DEFAULT_RETRY_MS = 3_000  # the reconnection delay suggested to EventSource clients
MAX_IN_FLIGHT_BATCHES = 200  # batches handed to the event loop and not fanned out yet
KEEPALIVE_FRAME = b": keep-alive\n\n"

Cursor = tuple[int, str, str, str, str]  # (ts_ms, site, device, sensor, metric)


def format_cursor(c: Cursor) -> str:
    """The event id of a cursor."""
    return f"{c[0]}/{c[1]}/{c[2]}/{c[3]}/{c[4]}"


def parse_cursor(text: str) -> Cursor:
    """A cursor from an event id; ``ValueError`` saying what is wrong with it."""
    parts = text.split("/")
    if len(parts) != 5 or not parts[0].isdigit():
        raise ValueError(f"not an event id of this stream: {text!r} "
                         "(expected <ts_ms>/<site>/<device>/<sensor>/<metric>)")
    ts, site, device, sensor, metric = parts
    if not (SITE_RE.fullmatch(site) and SITE_RE.fullmatch(device)
            and SENSOR_RE.fullmatch(sensor) and SENSOR_RE.fullmatch(metric)):
        raise ValueError(f"not an event id of this stream: {text!r} (bad names)")
    return (int(ts), site, device, sensor, metric)


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """Which readings a client wants; ``None`` matches everything."""

    site: str | None = None
    device: str | None = None
    metric: str | None = None

    def matches(self, r: Reading) -> bool:
        return ((self.site is None or r.site == self.site)
                and (self.device is None or r.device == self.device)
                and (self.metric is None or r.metric == self.metric))


class Item(NamedTuple):
    """One reading as the stream sends it, encoded once for every client."""

    key: Cursor
    id: bytes
    data: bytes


def encode(r: Reading) -> Item:
    key: Cursor = (r.ts_ms, r.site, r.device, r.sensor, r.metric)
    data = json.dumps({"site": r.site, "device": r.device, "sensor": r.sensor,
                       "metric": r.metric, "ts": format_ts(r.ts_ms), "value": r.value,
                       "unit": r.unit, "flags": list(r.flags)}, separators=(",", ":"))
    return Item(key, format_cursor(key).encode(), data.encode())


class Mark(NamedTuple):
    """A high-water mark: the largest cursor sent, and its id."""

    key: Cursor
    id: bytes


def render(items: Iterable[Item], mark: Mark | None,
           skip: set[Cursor] | None = None) -> tuple[bytes, Mark | None, int]:
    """Frames of ``items`` with ids from the running high-water mark; returns the frames,
    the mark after them and how many were rendered (``skip``: cursors already sent)."""
    out: list[bytes] = []
    count = 0
    for item in items:
        if skip is not None and item.key in skip:
            continue
        if mark is None or item.key > mark.key:
            mark = Mark(item.key, item.id)
        out += (b"event: reading\nid: ", mark.id, b"\ndata: ", item.data, b"\n\n")
        count += 1
    return b"".join(out), mark, count


def dropped_frame(reason: str, mark: Mark | None) -> bytes:
    """The last frame of a dropped stream: why, and the id to resume from."""
    resume = mark.id.decode() if mark else None
    data = json.dumps({"reason": reason, "resume": resume}, separators=(",", ":"))
    id_line = f"id: {resume}\n" if resume else ""
    return f"event: dropped\n{id_line}data: {data}\n\n".encode()


class _Part(NamedTuple):
    """One batch's events for one filter: the items, and the frames rendered from the
    filter's own mark (valid as they are for a client whose mark is not above ``before``)."""

    seq: int
    items: list[Item]
    frames: bytes
    before: Mark | None
    after: Mark | None


@dataclass(eq=False)
class Subscription:
    """One connected client: its filter, its queue of parts and its high-water mark.

    Lives on the event loop; only the loop touches it.
    """

    filter: LiveFilter
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    parts: deque[_Part] = field(default_factory=deque)
    pending: int = 0  # events queued, not yet taken
    dropped: str | None = None
    #: The largest cursor sent to this client (what it resumes from).
    mark: Mark | None = None
    #: Cursors replayed from storage that live parts up to ``dedupe_until`` may repeat.
    dedupe: set[Cursor] | None = None
    dedupe_until: int = 0

    def take(self) -> bytes:
        """Frames of every queued part, in order; advances the mark."""
        out: list[bytes] = []
        while self.parts:
            part = self.parts.popleft()
            self.pending -= len(part.items)
            if self.dedupe is not None and part.seq > self.dedupe_until:
                self.dedupe = None  # stored after the replay's query: cannot overlap it
            if self.dedupe is None and (
                    self.mark is None or (part.before is not None
                                          and self.mark.key <= part.before.key)):
                out.append(part.frames)  # the frames every client of this filter gets
                self.mark = part.after
            else:
                frames, self.mark, _ = render(part.items, self.mark, self.dedupe)
                out.append(frames)
        return b"".join(out)


class _Group:
    """The clients sharing one filter, and the filter's own high-water mark."""

    def __init__(self, flt: LiveFilter) -> None:
        self.filter = flt
        self.subscribers: set[Subscription] = set()
        self.mark: Mark | None = None


class LiveBroadcaster:
    """Fans stored readings out to live clients; fed by ingest, read by the stream route."""

    def __init__(self, queue_max: int = DEFAULT_QUEUE_MAX,
                 keepalive_s: float = DEFAULT_KEEPALIVE_S,
                 retry_ms: int = DEFAULT_RETRY_MS) -> None:
        self.queue_max = queue_max
        self.keepalive_s = keepalive_s
        self.retry_ms = retry_ms
        #: Batches published so far. Written by the store thread only: batch ``seq + 2`` is
        #: stored after batch ``seq`` was published (one store thread, store then publish).
        self.seq = 0
        self._groups: dict[LiveFilter, _Group] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = 0  # written by the store thread only
        self._fanned_out = 0  # written by the event loop only
        self._overloaded = False
        self._failed_once = False

    @property
    def subscribers(self) -> int:
        return sum(len(g.subscribers) for g in self._groups.values())

    # -- the store thread ---------------------------------------------------------------
    def publish(self, readings: Sequence[Reading], refused: Sequence[Reading] = ()) -> None:
        """Hand a stored batch to the live clients (``refused``: dead-lettered, not stored).

        Called by ingest after the batch is stored and acked. Never blocks, never raises.
        """
        try:
            self.seq += 1
            if not self._groups:  # nobody listens: no per-reading work
                return
            loop = self._loop
            if loop is None:
                return
            if self._scheduled - self._fanned_out >= MAX_IN_FLIGHT_BATCHES:
                # The event loop is this far behind: this batch cannot be delivered. Every
                # client would have a gap, so each is dropped (once) and told where to resume.
                if not self._overloaded:
                    self._overloaded = True
                    loop.call_soon_threadsafe(self._drop_all, "the hub is overloaded")
                return
            self._scheduled += 1
            loop.call_soon_threadsafe(self._fan_out, self.seq, readings, refused)
        except Exception:  # a broadcaster bug must never stop ingest
            if not self._failed_once:
                self._failed_once = True
                log.exception("live stream: could not hand a batch to the clients")

    # -- the event loop -----------------------------------------------------------------
    def subscribe(self, flt: LiveFilter) -> Subscription:
        """Register a client; call from the event loop that serves it."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._groups:
                raise RuntimeError("live clients must all be served by one event loop")
            self._loop = loop
            self._scheduled = self._fanned_out = 0
            self._overloaded = False
        group = self._groups.get(flt)
        if group is None:
            group = self._groups[flt] = _Group(flt)
        sub = Subscription(flt)
        group.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a client (idempotent)."""
        group = self._groups.get(sub.filter)
        if group is not None:
            group.subscribers.discard(sub)
            if not group.subscribers:
                del self._groups[sub.filter]

    def drop(self, sub: Subscription, reason: str) -> None:
        """Stop feeding a client, free its queue and wake it to say why."""
        self.unsubscribe(sub)
        sub.parts.clear()
        sub.pending = 0
        sub.dropped = reason
        sub.wake.set()

    def close(self, reason: str = "the hub is stopping") -> None:
        """End every stream with a ``dropped`` event (a server waits for open streams to
        end before it stops). Call from the event loop."""
        self._drop_all(reason)

    def _drop_all(self, reason: str) -> None:
        for group in list(self._groups.values()):
            for sub in list(group.subscribers):
                self.drop(sub, reason)
        self._overloaded = False

    def _fan_out(self, seq: int, readings: Sequence[Reading],
                 refused: Sequence[Reading]) -> None:
        self._fanned_out += 1
        try:
            if not self._groups or not readings:
                return
            gone = set(refused) if refused else None
            encoded: list[Item | None] = [None] * len(readings)
            for group in list(self._groups.values()):
                items: list[Item] = []
                flt = group.filter
                for i, r in enumerate(readings):
                    if flt.matches(r) and (gone is None or r not in gone):
                        item = encoded[i]
                        if item is None:
                            item = encoded[i] = encode(r)
                        items.append(item)
                if items:
                    self._deliver(group, seq, items)
        except Exception:
            log.exception("live stream: fan-out failed; dropping every client")
            self._drop_all("internal error in the live stream")

    def _deliver(self, group: _Group, seq: int, items: list[Item]) -> None:
        before = group.mark
        frames, group.mark, _ = render(items, before)
        part = _Part(seq, items, frames, before, group.mark)
        for sub in list(group.subscribers):
            if sub.pending + len(items) > self.queue_max:
                self.drop(sub, f"too slow: more than {self.queue_max} events waiting")
                continue
            sub.parts.append(part)
            sub.pending += len(items)
            sub.wake.set()
