"""The live broadcaster: its fan-out, its drop policy, the replay bounds, its place in ingest,
and 200 streaming clients on a real server while a real ingest stores at a steady rate."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from fabcity.mqtt import parse_broker_url
from fabcity.reading import Reading, now_ms
from hub.api import create_app
from hub.config import HubMqttConfig, IngestConfig
from hub.context import HubContext
from hub.ingest import Ingest
from hub.live import LiveBroadcaster, LiveFilter, parse_cursor
from hub.live_replay import replay
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.hub.sse import parse_frames, publish_steady, run_clients, serving, wait_subscribers
from tests.hub.test_ingest import _publish, _wait
from tests.servers import Mosquitto


def _r(i: int, base: int, device: str = "pi-1", metric: str = "sequence") -> Reading:
    """Reading number ``i``, stamped ``base + i`` ms."""
    return Reading("lab", device, "seq", metric, float(i), base + i, "1")


class Watched(list[Reading]):
    """A batch that notes whether anyone looked inside it."""

    touched = False

    def __iter__(self) -> Iterator[Reading]:
        self.touched = True
        return super().__iter__()

    def __len__(self) -> int:
        self.touched = True
        return super().__len__()


def test_with_nobody_listening_publish_does_not_look_at_the_readings() -> None:
    live = LiveBroadcaster()
    batch = Watched([_r(i, 0) for i in range(10)])
    live.publish(batch)
    assert live.seq == 1 and not batch.touched


def _frames(sub: Any) -> list[Any]:
    events, _ = parse_frames(sub.take().decode())
    return events


def test_fan_out_filters_and_ids_never_go_back() -> None:
    async def run() -> None:
        live = LiveBroadcaster()
        everything = live.subscribe(LiveFilter())
        co2 = live.subscribe(LiveFilter(metric="count"))
        # 5 is late (ts older than 6): it is sent, with the id of the newest sent so far
        live.publish([_r(6, 1000), _r(5, 1000), _r(7, 1000, metric="count")])
        await asyncio.sleep(0)
        events = _frames(everything)
        assert [e.json()["value"] for e in events] == [6.0, 5.0, 7.0]
        assert [parse_cursor(e.id)[0] for e in events] == [1006, 1006, 1007]
        assert [e.json()["value"] for e in _frames(co2)] == [7.0]
    asyncio.run(run())


def test_dead_lettered_readings_are_not_streamed() -> None:
    async def run() -> None:
        live = LiveBroadcaster()
        sub = live.subscribe(LiveFilter())
        batch = [_r(1, 0), _r(2, 0)]
        live.publish(batch, refused=[batch[0]])
        await asyncio.sleep(0)
        assert [e.json()["value"] for e in _frames(sub)] == [2.0]
    asyncio.run(run())


def test_a_full_queue_drops_that_client_only_and_says_where_to_resume() -> None:
    async def run() -> None:
        live = LiveBroadcaster(queue_max=10)
        slow, fast = live.subscribe(LiveFilter()), live.subscribe(LiveFilter())
        live.publish([_r(i, 0) for i in range(6)])
        await asyncio.sleep(0)
        assert len(_frames(slow)) == 6  # the slow one takes a first batch, then stalls
        for start in (6, 12):
            assert len(_frames(fast)) == 6
            live.publish([_r(i, 0) for i in range(start, start + 6)])
            await asyncio.sleep(0)
        assert slow.dropped is not None and "too slow" in slow.dropped
        assert slow.mark is not None and slow.mark.key[0] == 5  # the last it was sent
        assert live.subscribers == 1 and fast.dropped is None
    asyncio.run(run())


def test_an_event_loop_too_far_behind_drops_every_client() -> None:
    async def run() -> None:
        live = LiveBroadcaster()
        sub = live.subscribe(LiveFilter())
        for i in range(250):  # the loop does not run meanwhile: 200 batches wait, 50 lost
            live.publish([_r(i, 0)])
        await asyncio.sleep(0.01)
        assert sub.dropped == "the hub is overloaded"
    asyncio.run(run())


def test_replay_is_bounded_by_age_and_count_and_names_the_gap(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    now = now_ms()
    storage.write([_r(i, now - 3_600_000) for i in range(3)]  # an hour ago
                  + [_r(i, now - 60_000) for i in range(100)])  # a minute ago
    cursor = (now - 3_600_000, "lab", "pi-1", "seq", "sequence")  # the first hour-old one
    got = replay(storage, LiveFilter(), cursor, now)
    assert [item.key[0] for item in got.items] == [now - 60_000 + i for i in range(100)]
    assert got.gap == (now - 3_600_000, now - 900_000)
    few = replay(storage, LiveFilter(), (now - 120_000, "", "", "", ""), now, max_readings=30)
    assert [item.key[0] for item in few.items] == [now - 60_000 + i for i in range(70, 100)]
    assert few.gap == (now - 120_000, now - 60_000 + 70)
    storage.close()


def test_a_broadcaster_failure_never_stops_ingest(mosquitto: Mosquitto, tmp_path: Path) -> None:
    live = LiveBroadcaster()

    async def subscribe_then_close_the_loop() -> None:
        live.subscribe(LiveFilter())
    loop = asyncio.new_event_loop()
    loop.run_until_complete(subscribe_then_close_the_loop())
    loop.close()  # every hand-off to it now raises inside publish
    storage = SqliteStorage(tmp_path / "hub.db")
    ingest = Ingest(parse_broker_url(mosquitto.url), HubMqttConfig(url=mosquitto.url),
                    IngestConfig(), storage, DeviceRegistry(tmp_path / "registry.db"),
                    HubMetrics(), live=live)
    ingest.start()
    _wait(lambda: ingest.connected)
    time.sleep(0.2)
    _publish(mosquitto, 200)
    _wait(lambda: storage.count() == 200)
    ingest.stop()
    assert live.seq >= 1 and ingest.failed is None
    storage.close()


# -- 200 clients -----------------------------------------------------------------------

CLIENTS = 200
RATE_HZ = 100  # messages a second
PER_MESSAGE = 10  # readings a message: 1,000 readings/s
MESSAGES = 400  # four seconds
RATE_MARGIN = 0.15  # the storing rate with clients may be at most this much lower


def _phase(mp: Any, port: int, mqtt_port: int, storage: SqliteStorage, live: LiveBroadcaster,
           device: str, paths: list[str]) -> tuple[float, list[tuple[int, int]]]:
    """Publish at a steady rate while ``paths`` stream; the storing rate and what each got."""
    expected = MESSAGES * PER_MESSAGE
    results, connected = mp.Queue(), mp.Event()
    clients = None
    if paths:
        clients = mp.Process(target=run_clients,
                             args=(port, paths, expected, 25.0, results, connected))
        clients.start()
        assert connected.wait(20)
        wait_subscribers(live, len(paths), timeout_s=20)
    before = storage.count()
    started = mp.Value("d", 0.0)
    publisher = mp.Process(target=publish_steady, args=(
        mqtt_port, device, MESSAGES, PER_MESSAGE, RATE_HZ, now_ms() - 60_000, started))
    publisher.start()
    _wait(lambda: storage.count() >= before + expected, timeout_s=30)
    rate = expected / (time.time() - started.value)
    publisher.join(10)
    got: list[tuple[int, int]] = results.get(timeout=30) if clients else []
    if clients:
        clients.join(10)
    return rate, got


def test_200_clients_get_every_reading_while_ingest_keeps_its_rate(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    live = LiveBroadcaster()
    ctx = HubContext(storage=storage, registry=DeviceRegistry(tmp_path / "registry.db"),
                     live=live)
    ingest = Ingest(parse_broker_url(mosquitto.url), HubMqttConfig(url=mosquitto.url),
                    IngestConfig(), storage, ctx.registry, HubMetrics(), live=live)
    ingest.start()
    _wait(lambda: ingest.connected)
    time.sleep(0.2)
    mp = multiprocessing.get_context("spawn")
    try:
        with serving(create_app(ctx)) as url:
            port = int(url.rsplit(":", 1)[1])
            alone, _ = _phase(mp, port, mosquitto.port, storage, live, "pi-quiet", [])
            paths = ["/api/v1/stream", "/api/v1/stream?site=lab&device=pi-busy",
                     "/api/v1/stream?metric=sequence", "/api/v1/stream?device=pi-busy"]
            watched, got = _phase(mp, port, mosquitto.port, storage, live, "pi-busy",
                                  [paths[i % len(paths)] for i in range(CLIENTS)])
            rss_mb = psutil.Process().memory_info().rss / 1e6
    finally:
        ingest.stop()
        storage.close()
    expected = MESSAGES * PER_MESSAGE
    print(f"\nstoring rate: {alone:.0f} readings/s alone, {watched:.0f} with {CLIENTS} "
          f"clients; hub RSS {rss_mb:.0f} MB")
    assert len(got) == CLIENTS
    assert all(g == (expected, 0) for g in got), sorted(set(got))
    assert watched >= alone * (1 - RATE_MARGIN)
