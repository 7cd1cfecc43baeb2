"""Identical live readings queries share one computation and, for MAX_AGE_S, its answer."""

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from fabcity.reading import Reading, now_ms
from hub.api.app import create_app
from hub.api.shared_answers import MAX_AGE_S, AnswerCache, SharedAnswer
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery
from hub.storage.sqlite import SqliteStorage

LIVE = "/api/v1/readings?metric=pm2_5&every=1m&start=-1h"
QUERY_S = 0.3


class CountingStorage(SqliteStorage):
    """Counts history queries; each takes ``QUERY_S`` so concurrent requests overlap."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.queries = 0
        self._lock = threading.Lock()

    def query(self, q: ReadingQuery) -> list[Reading]:
        with self._lock:
            self.queries += 1
        time.sleep(QUERY_S)
        return super().query(q)


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[CountingStorage]:
    store = CountingStorage(tmp_path / "hub.db")
    store.write([Reading("lab", f"pi-{i}", "air", "pm2_5", 5.0 + i, now_ms() - 600_000, "ug/m3")
                 for i in range(40)])  # a body large enough to be gzipped
    yield store
    store.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DeviceRegistry]:
    r = DeviceRegistry(tmp_path / "registry.db")
    yield r
    r.close()


def _get_all(ctx: HubContext | FastAPI, *requests: tuple[str, dict[str, str]]
             ) -> list[httpx.Response]:
    """The requests at once against one app (made from ``ctx`` unless given)."""
    app = ctx if isinstance(ctx, FastAPI) else create_app(ctx)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return list(await asyncio.gather(*(client.get(path, headers=headers)
                                               for path, headers in requests)))
    return asyncio.run(run())


def test_two_identical_concurrent_live_requests_run_storage_once(
    counting: CountingStorage, registry: DeviceRegistry
) -> None:
    first, second = _get_all(HubContext(counting, registry), (LIVE, {}), (LIVE, {}))
    assert first.status_code == second.status_code == 200
    assert counting.queries == 1
    assert first.content == second.content
    assert first.json()["count"] == 40


def test_different_live_queries_are_computed_each(
    counting: CountingStorage, registry: DeviceRegistry
) -> None:
    answers = _get_all(HubContext(counting, registry), (LIVE, {}), (LIVE + "&agg=max", {}),
                       (LIVE + "&format=csv", {}))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert counting.queries == 3


def test_a_shared_answer_is_the_same_gzipped_or_not_and_honours_if_none_match(
    counting: CountingStorage, registry: DeviceRegistry
) -> None:
    app = create_app(HubContext(counting, registry))
    zipped, plain = _get_all(app, (LIVE, {"accept-encoding": "gzip"}),
                             (LIVE, {"accept-encoding": "identity"}))
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert zipped.content == plain.content  # httpx decoded the gzip
    assert zipped.headers["etag"] == plain.headers["etag"]
    assert zipped.headers["cache-control"] == "no-cache"
    assert counting.queries == 1
    (again,) = _get_all(app, (LIVE, {"if-none-match": plain.headers["etag"]}))
    assert again.status_code == 304


def test_a_reading_stored_after_a_cached_answer_shows_up_within_max_age(
    counting: CountingStorage, registry: DeviceRegistry
) -> None:
    ctx = HubContext(counting, registry)
    app = create_app(ctx)
    late = Reading("lab", "pi-new", "air", "pm2_5", 99.0, now_ms() - 120_000, "ug/m3")

    async def run() -> tuple[httpx.Response, httpx.Response, float, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            before = await client.get(LIVE)
            counting.write([late])
            stored_at = time.monotonic()
            cached = await client.get(LIVE)  # may still be the answer from before the write
            await asyncio.sleep(max(0.0, MAX_AGE_S + 0.05 - (time.monotonic() - stored_at)))
            return before, cached, time.monotonic() - stored_at, await client.get(LIVE)
    before, cached, waited_s, after = asyncio.run(run())
    devices = {r["device"] for r in after.json()["readings"]}
    assert "pi-new" not in {r["device"] for r in before.json()["readings"]}
    assert cached.content == before.content  # served from memory: no new storage query
    assert waited_s <= MAX_AGE_S + 0.5
    assert "pi-new" in devices
    assert counting.queries == 2


def _answer(at_ms: int, size: int) -> SharedAnswer:
    return SharedAnswer(at_ms, {"ETag": '"x"'}, b"x" * size, None)


def test_the_cache_keeps_at_most_max_bytes_and_drops_the_oldest_first() -> None:
    cache = AnswerCache(max_age_s=60, max_entries=10, max_bytes=250)

    async def fill() -> None:
        for i, key in enumerate("abc"):
            async def make(i: int = i) -> SharedAnswer:
                return _answer(1000 + i, 100)
            await cache.answer(key, 1000 + i, make)
    asyncio.run(fill())
    assert cache.computed == 3
    assert cache.stored_bytes == 200
    assert list(cache._done) == ["b", "c"]
