"""Storage queries under load: a bounded number run, a short queue waits, the rest get 503;
reads go through a small pool of connections and never hold up writes."""

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from fabcity.reading import Reading, now_ms
from hub.api.app import create_app
from hub.config import ApiConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery
from hub.storage.sqlite import SqliteStorage
from tests.servers import free_port

QUERY_S = 0.4


class SlowStorage(SqliteStorage):
    """Every history read takes ``QUERY_S``; counts how many run at once."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def raw(self, q: ReadingQuery) -> list[Reading]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(QUERY_S)
        with self._lock:
            self.running -= 1
        return super().raw(q)


def _serve(ctx: HubContext) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[SlowStorage]:
    store = SlowStorage(tmp_path / "hub.db")
    store.write([Reading("lab", "pi-1", "air", "pm2_5", 5.0, now_ms() - 60_000, "ug/m3")])
    yield store
    store.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DeviceRegistry]:
    r = DeviceRegistry(tmp_path / "registry.db")
    yield r
    r.close()


def _burst(url: str, n: int, path: str = "/api/v1/readings?metric=pm2_5") -> list[httpx.Response]:
    """``n`` different questions at once (identical live ones would share one computation)."""
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return list(await asyncio.gather(*(client.get(f"{path}&limit={i + 1}")
                                               for i in range(n))))
    return asyncio.run(run())


def test_beyond_the_running_and_queued_queries_the_api_answers_503_with_retry_after(
    slow: SlowStorage, registry: DeviceRegistry
) -> None:
    api = ApiConfig(max_concurrent_queries=2, max_queued_queries=3, queue_timeout_s=30)
    for url in _serve(HubContext(slow, registry, api=api)):
        answers = _burst(url, 10)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 5 + [503] * 5
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.headers["Retry-After"].isdigit()
    assert "busy: the queue is full" in busy.json()["detail"]
    assert slow.most == 2


def test_a_query_that_waits_longer_than_queue_timeout_gets_503(
    slow: SlowStorage, registry: DeviceRegistry
) -> None:
    api = ApiConfig(max_concurrent_queries=1, max_queued_queries=10, queue_timeout_s=0.1)
    for url in _serve(HubContext(slow, registry, api=api)):
        answers = _burst(url, 3)
    assert sorted(r.status_code for r in answers) == [200, 503, 503]
    assert "waited 0.1 s" in next(r for r in answers if r.status_code == 503).json()["detail"]


def test_health_answers_while_every_query_slot_is_taken(
    slow: SlowStorage, registry: DeviceRegistry
) -> None:
    api = ApiConfig(max_concurrent_queries=1, max_queued_queries=0, queue_timeout_s=30)
    for url in _serve(HubContext(slow, registry, api=api)):
        async def run(url: str = url) -> tuple[httpx.Response, float]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                busy = asyncio.create_task(client.get("/api/v1/readings?metric=pm2_5"))
                await asyncio.sleep(QUERY_S / 4)
                started = time.perf_counter()
                health = await client.get("/api/v1/health")
                took = time.perf_counter() - started
                await busy
                return health, took
        health, took = asyncio.run(run())
    assert health.status_code == 200
    assert took < QUERY_S / 2


class SleepySqlite(SqliteStorage):
    """Connections with a ``sleep_ms(n)`` SQL function, to hold a read open in SQLite itself."""

    def _connect(self, cache: int) -> sqlite3.Connection:
        conn = super()._connect(cache)
        conn.create_function("sleep_ms", 1, lambda ms: time.sleep(ms / 1000) or 0)
        return conn


def test_reads_share_a_small_pool_and_writes_go_through_while_every_reader_is_busy(
    tmp_path: Path,
) -> None:
    store = SleepySqlite(tmp_path / "hub.db", read_connections=2)
    try:
        t0 = now_ms() - 3_600_000
        store.write([Reading("lab", "pi-1", "air", "pm2_5", 1.0, t0, "ug/m3")])
        readers = [threading.Thread(target=store._select,
                                    args=("SELECT sleep_ms(600) FROM points", ()))
                   for _ in range(6)]
        for thread in readers:
            thread.start()
        time.sleep(0.1)  # two reads hold open read transactions, four wait for a connection
        started = time.perf_counter()
        store.write([Reading("lab", "pi-1", "air", "pm2_5", 2.0, t0 + 1000, "ug/m3")])
        write_s = time.perf_counter() - started
        for thread in readers:
            thread.join()
        assert write_s < 0.2
        assert len(store._connections) == 3  # the writer and two readers, for six readers
        assert store.count() == 2
    finally:
        store.close()
