"""A bound on the storage queries the API runs at once, with a short queue and 503 beyond.

Each request that reads history (readings, air quality, emissions, machines) takes a slot
before FastAPI hands it to a worker thread: at most ``[api] max_concurrent_queries`` run, at
most ``max_queued_queries`` wait (in the event loop, holding no thread and no connection), and
one that waited ``queue_timeout_s`` in vain, or finds the queue full, gets ``503`` with
``Retry-After``. Without it 200 clients asking for a day each held 200 threads and their
answers in memory at once (2.3 GB) and starved ingest of the GIL (lag p95 9.5 s).

When the last query of a burst ends, the C allocator is asked to hand free memory back to the
system (glibc ``malloc_trim``), so an idle hub returns to its usual size.
"""

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request

from fabcity.errors import StorageUnavailable
from hub.api.shared_answers import shares_answer
from hub.config import ApiConfig

__all__ = ["GATED_PATHS", "QueryGate", "StorageBusy", "storage_slot"]

log = logging.getLogger(__name__)

#: Route paths (prefixes) whose answers are built from storage queries of any size.
GATED_PATHS = ("/api/v1/readings", "/api/v1/aqi", "/api/v1/who", "/api/v1/climate",
               "/api/v1/machines")
TRIM_AFTER_IDLE_S = 0.5
READINGS_PATH = "/api/v1/readings"


class StorageBusy(StorageUnavailable):
    """Too many storage queries running and waiting: answered 503 with ``Retry-After``."""


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or ``None`` where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


class QueryGate:
    """Counts running and waiting queries; lives on the event loop (no locks needed)."""

    def __init__(self, concurrent: int, queued: int, wait_s: float) -> None:
        self.concurrent = concurrent
        self.queued = queued
        self.wait_s = wait_s
        self.running = 0
        self.waiting = 0
        self.refused = 0
        self._slots = asyncio.Semaphore(concurrent)
        self._trim = _malloc_trim()
        self._trim_handle: asyncio.TimerHandle | None = None

    def _busy(self, why: str) -> StorageBusy:
        self.refused += 1
        return StorageBusy(f"busy: {why} ({self.running} queries running, {self.waiting} "
                           f"waiting; [api] max_concurrent_queries = {self.concurrent}, "
                           f"max_queued_queries = {self.queued})")

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if there is room; else raise :class:`StorageBusy`."""
        if self._slots.locked() or self.waiting:
            if self.waiting >= self.queued:
                raise self._busy("the queue is full")
            self.waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self.wait_s)
            except TimeoutError:
                raise self._busy(f"waited {self.wait_s:g} s for a slot") from None
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.running += 1

    def release(self) -> None:
        self.running -= 1
        self._slots.release()
        if self.running == 0 and self.waiting == 0 and self._trim is not None:
            if self._trim_handle is not None:
                self._trim_handle.cancel()
            self._trim_handle = asyncio.get_running_loop().call_later(
                TRIM_AFTER_IDLE_S, self._trim_if_idle)

    def _trim_if_idle(self) -> None:
        self._trim_handle = None
        if self.running == 0 and self.waiting == 0 and self._trim is not None:
            self._trim()


def gate_of(app: FastAPI, api: ApiConfig) -> QueryGate:
    """The app's gate, made on first use (inside the running event loop)."""
    gate: QueryGate | None = getattr(app.state, "query_gate", None)
    if gate is None:
        gate = app.state.query_gate = QueryGate(api.max_concurrent_queries,
                                                api.max_queued_queries, api.queue_timeout_s)
    return gate


async def storage_slot(request: Request) -> AsyncIterator[None]:
    """App-wide dependency: gate the routes in :data:`GATED_PATHS`, let the others through."""
    if not request.url.path.startswith(GATED_PATHS) or (
            request.url.path == READINGS_PATH and shares_answer(request.query_params)):
        yield  # shared live readings: only the request that computes takes a slot
        return
    gate = gate_of(request.app, request.app.state.ctx.api)
    await gate.acquire()
    try:
        yield
    finally:
        gate.release()
