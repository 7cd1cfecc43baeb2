"""One computation for identical live readings queries, and its answer kept a few seconds.

A live chart asks ``/api/v1/readings?metric=pm2_5&every=1m&start=-24h``: 200 people opening it
in the same second ask one question. The first request for a query string (the leader) takes
a storage query slot and computes the answer: the JSON body, its headers and its gzip form.
Identical requests arriving while it runs wait for that computation (no slot, no thread), and
those arriving within :data:`MAX_AGE_S` of the instant the leader resolved ``now`` get the
stored answer. Only live JSON queries are shared (a relative ``start`` or ``end``); closed
ranges, CSV downloads and everything else run as before.

Staleness: every answer is exactly the one the hub would have given at an instant at most
:data:`MAX_AGE_S` before the request, so a reading stored at time ``S`` is in every answer to
a request made after ``S + MAX_AGE_S``. Memory: at most :data:`MAX_ENTRIES` answers and
:data:`MAX_BYTES` of bodies are kept; older ones are dropped first, expired ones as new ones
arrive.
"""

import asyncio
import gzip
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial

from fastapi import FastAPI

from hub.api.deps import DEFAULT_RANGE

__all__ = ["GZIP_LEVEL", "GZIP_MIN_BYTES", "MAX_AGE_S", "AnswerCache", "SharedAnswer",
           "answers_of", "gzipped", "shares_answer"]

MAX_AGE_S = 2.0
MAX_ENTRIES = 64
MAX_BYTES = 32 * 1024 * 1024
#: zlib level of the gzip middleware (and of answers where ISA-L is missing): on a day of
#: 1-minute means (1.5 MB of JSON) 10 ms and 9.3% of the size, against 31 ms and 8.7% at
#: level 9 and 4 ms and 10.1% at level 1 (docs/benchmarks.md).
GZIP_LEVEL = 4
#: ISA-L (``isal``) level of readings answers: ~1 ms for 1.5 MB of readings JSON, about the
#: size of zlib's level 4 (docs/benchmarks.md, "Readings budget").
ISAL_LEVEL = 1
GZIP_MIN_BYTES = 1000  # smaller bodies travel as they are


def _gzip_compress() -> Callable[[bytes], bytes]:
    """ISA-L's gzip (the ``isal`` package, a hub dependency) where it is installed, else
    zlib's: the same format, read by every client."""
    try:
        from isal import igzip
    except ImportError:  # a platform without an isal wheel: zlib, slower
        return partial(gzip.compress, compresslevel=GZIP_LEVEL, mtime=0)
    return partial(igzip.compress, compresslevel=ISAL_LEVEL, mtime=0)


_compress = _gzip_compress()


def shares_answer(params: Mapping[str, str]) -> bool:
    """Whether a readings request is a live JSON query, answered through the shared cache
    (decided from the query string alone: the storage gate needs it before validation)."""
    if params.get("format", "json") != "json":
        return False
    start, end = params.get("start", DEFAULT_RANGE), params.get("end", "now")
    return start == "now" or start.startswith("-") or end == "now" or end.startswith("-")


def gzipped(body: bytes) -> bytes | None:
    """The body as ``Content-Encoding: gzip`` sends it, or None when too small to bother."""
    if len(body) < GZIP_MIN_BYTES:
        return None
    return _compress(body)


@dataclass(frozen=True, slots=True)
class SharedAnswer:
    """A complete 200 answer: headers (ETag included), body, and its gzip form."""

    at_ms: int  # the instant the query's relative times were resolved
    headers: dict[str, str]
    body: bytes
    body_gzip: bytes | None

    @property
    def size(self) -> int:
        return len(self.body) + len(self.body_gzip or b"")


class AnswerCache:
    """Answers by query string: running (single flight) and done (for ``max_age_s``).

    Lives on the event loop (no locks). ``computed`` and ``shared`` count answers computed
    and answers handed to a request that did not compute them."""

    def __init__(self, max_age_s: float = MAX_AGE_S, max_entries: int = MAX_ENTRIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self.max_age_ms = int(max_age_s * 1000)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.computed = 0
        self.shared = 0
        self._done: OrderedDict[str, SharedAnswer] = OrderedDict()
        self._bytes = 0
        self._running: dict[str, tuple[int, asyncio.Future[SharedAnswer]]] = {}

    async def answer(self, key: str, at_ms: int,
                     compute: Callable[[], Awaitable[SharedAnswer]]) -> SharedAnswer:
        """The answer to ``key`` for a request resolved at ``at_ms``: a stored or running one
        resolved at most ``max_age_s`` earlier, else a new computation by ``compute``."""
        done = self._done.get(key)
        if done is not None and at_ms - done.at_ms <= self.max_age_ms:
            self.shared += 1
            return done
        running = self._running.get(key)
        if running is not None and at_ms - running[0] <= self.max_age_ms:
            self.shared += 1
            return await asyncio.shield(running[1])
        # Its own task: a leader whose client goes away does not cancel the others' answer.
        task = asyncio.ensure_future(compute())
        self._running[key] = (at_ms, task)
        self.computed += 1
        task.add_done_callback(lambda t: self._finish(key, t))
        return await asyncio.shield(task)

    def _finish(self, key: str, task: asyncio.Future[SharedAnswer]) -> None:
        if self._running.get(key, (0, None))[1] is task:
            del self._running[key]
        if task.cancelled() or task.exception() is not None:
            return  # failures are not kept: the next request tries again
        self._store(key, task.result())

    def _store(self, key: str, answer: SharedAnswer) -> None:
        old = self._done.get(key)
        if old is not None and old.at_ms >= answer.at_ms:
            return
        if old is not None:
            self._bytes -= self._done.pop(key).size
        if answer.size > self.max_bytes:
            return
        for stale in [k for k, a in self._done.items()
                      if answer.at_ms - a.at_ms > self.max_age_ms]:
            self._bytes -= self._done.pop(stale).size
        self._done[key] = answer
        self._bytes += answer.size
        while len(self._done) > self.max_entries or self._bytes > self.max_bytes:
            self._bytes -= self._done.popitem(last=False)[1].size

    @property
    def stored_bytes(self) -> int:
        return self._bytes


def answers_of(app: FastAPI) -> AnswerCache:
    """The app's answer cache, made on first use."""
    cache: AnswerCache | None = getattr(app.state, "answer_cache", None)
    if cache is None:
        cache = app.state.answer_cache = AnswerCache()
    return cache
