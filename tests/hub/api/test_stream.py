"""``GET /api/v1/stream`` over a real uvicorn server: filters, resume, drops, keep-alives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from fabcity.reading import Reading, now_ms
from hub.api import create_app
from hub.context import HubContext
from hub.live import LiveBroadcaster
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.hub.api.conftest import reading, rejected
from tests.hub.sse import Reader, parse_frames, serving, wait_subscribers


def _store(ctx: HubContext, readings: Sequence[Reading]) -> None:
    """What ingest does with a batch: write it, then hand it to the live clients."""
    ctx.storage.write(readings)
    ctx.live.publish(list(readings))


def _seq(i: int, base: int) -> Reading:
    return reading("sequence", float(i), base + i * 10, sensor="seq", unit="1")


@pytest.fixture
def sqlite_ctx(tmp_path: Path, registry: DeviceRegistry) -> Iterator[HubContext]:
    """A context on SQLite only, for tests about the stream rather than storage."""
    storage = SqliteStorage(tmp_path / "hub.db")
    yield HubContext(storage=storage, registry=registry, live=LiveBroadcaster(keepalive_s=0.3))
    storage.close()


def test_each_stored_reading_reaches_the_clients_whose_filters_match(ctx: HubContext) -> None:
    ctx.live = LiveBroadcaster(keepalive_s=0.3)
    now = now_ms()
    with serving(create_app(ctx)) as url:
        everything = Reader(f"{url}/api/v1/stream").start()
        pm25 = Reader(f"{url}/api/v1/stream?site=street-12&metric=pm2_5").start()
        device = Reader(f"{url}/api/v1/stream?device=pi-laser").start()
        wait_subscribers(ctx.live, 3)
        _store(ctx, [
            reading("pm2_5", 12.5, now - 2000, site="street-12", device="pi-air"),
            reading("pm10", 20.0, now - 2000, site="street-12", device="pi-air"),
            reading("pm2_5", 3.0, now - 1000, site="fablab-bcn", device="pi-laser"),
        ])
        assert [e.json()["value"] for e in everything.wait_for(3)] == [12.5, 20.0, 3.0]
        assert [e.json()["value"] for e in device.wait_for(1)] == [3.0]
        [event] = pm25.wait_for(1)
        time.sleep(0.2)
        assert len(pm25.readings()) == 1 and len(device.readings()) == 1
    assert event.json() == {"site": "street-12", "device": "pi-air", "sensor": "air",
                            "metric": "pm2_5", "ts": _rfc3339(now - 2000), "value": 12.5,
                            "unit": "ug/m3", "flags": []}
    assert event.id == f"{now - 2000}/street-12/pi-air/air/pm2_5"
    assert pm25.status == 200
    assert pm25.response_headers["content-type"].startswith("text/event-stream")
    assert pm25.response_headers["x-accel-buffering"] == "no"
    assert pm25.raw[0].startswith("retry: 3000\n\n")


def _rfc3339(ts_ms: int) -> str:
    from fabcity.reading import format_ts
    return format_ts(ts_ms)


def test_resume_replays_exactly_the_missed_readings_then_continues_live(ctx: HubContext) -> None:
    ctx.live = LiveBroadcaster(keepalive_s=0.2)
    base = now_ms() - 120_000
    with serving(create_app(ctx)) as url:
        first = Reader(f"{url}/api/v1/stream?metric=sequence").start()
        wait_subscribers(ctx.live, 1)
        _store(ctx, [_seq(i, base) for i in range(5)])
        last_id = first.wait_for(5)[-1].id
        assert last_id is not None
        first.close()
        wait_subscribers_gone(ctx.live)
        _store(ctx, [_seq(i, base) for i in range(5, 12)])  # missed while away
        second = Reader(f"{url}/api/v1/stream?metric=sequence",
                        headers={"Last-Event-ID": last_id}).start()
        assert [e.json()["value"] for e in second.wait_for(7)] == [float(i) for i in range(5, 12)]
        _store(ctx, [_seq(i, base) for i in range(12, 15)])
        got = second.wait_for(10)
        time.sleep(0.3)
        assert [e.json()["value"] for e in second.readings()] == [float(i) for i in range(5, 15)]
    ids = [e.id for e in got]
    assert ids == sorted(ids, key=lambda i: int(str(i).split("/")[0])) and len(set(ids)) == 10


def wait_subscribers_gone(live: LiveBroadcaster, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while live.subscribers:
        assert time.monotonic() < deadline, "the closed client is still subscribed"
        time.sleep(0.02)


def test_resume_while_ingest_keeps_writing_has_no_gap_and_no_duplicate(ctx: HubContext) -> None:
    ctx.live = LiveBroadcaster(keepalive_s=0.2)
    base = now_ms() - 300_000
    total = 150
    with serving(create_app(ctx)) as url:
        first = Reader(f"{url}/api/v1/stream?metric=sequence").start()
        wait_subscribers(ctx.live, 1)
        _store(ctx, [_seq(0, base)])
        cursor = first.wait_for(1)[-1].id
        first.close()
        wait_subscribers_gone(ctx.live)
        _store(ctx, [_seq(i, base) for i in range(1, 40)])

        def keep_writing() -> None:  # the store thread: batches of 5, one every ~5 ms
            for start in range(40, total, 5):
                _store(ctx, [_seq(i, base) for i in range(start, start + 5)])
                time.sleep(0.005)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        second = Reader(f"{url}/api/v1/stream?metric=sequence",
                        headers={"Last-Event-ID": str(cursor)}).start()
        writer.join()
        second.wait_for(total - 1, timeout_s=20)
        time.sleep(0.3)
    values = [e.json()["value"] for e in second.readings()]
    assert sorted(values) == [float(i) for i in range(1, total)], "a gap or a duplicate"


def test_a_resume_older_than_the_replay_window_reports_the_gap(sqlite_ctx: HubContext) -> None:
    ctx = sqlite_ctx
    now = now_ms()
    _store(ctx, [_seq(0, now - 3_600_000), _seq(1, now - 60_000)])
    cursor = f"{now - 3_600_000}/fablab-bcn/pi-laser/seq/sequence"
    with serving(create_app(ctx)) as url:
        reader = Reader(f"{url}/api/v1/stream", headers={"Last-Event-ID": cursor}).start()
        reader.wait_for(1)
    gap = next(e for e in reader.events if e.event == "gap").json()
    assert gap["from"] == _rfc3339(now - 3_600_000)
    assert [e.json()["value"] for e in reader.readings()] == [1.0]


def test_keep_alive_comments_flow_while_nothing_is_stored(sqlite_ctx: HubContext) -> None:
    with serving(create_app(sqlite_ctx)) as url:
        reader = Reader(f"{url}/api/v1/stream").start()
        time.sleep(1.0)
    assert reader.comments.count(": keep-alive") >= 2
    assert not reader.readings()


@pytest.mark.parametrize(("query", "headers", "parameter"), [
    ("?sites=lab", {}, "sites"),
    ("?site=Bad Site", {}, "site"),
    ("?metric=PM25", {}, "metric"),
    ("?device=a&device=b", {}, "device"),
    ("", {"Last-Event-ID": "yesterday"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "1/site/device/Sensor/metric"}, "Last-Event-ID"),
])
def test_bad_parameters_answer_422_naming_them(sqlite_ctx: HubContext, query: str,
                                               headers: dict[str, str], parameter: str) -> None:
    with serving(create_app(sqlite_ctx)) as url:
        response = httpx.get(f"{url}/api/v1/stream{query}", headers=headers)
    rejected(response, parameter)


def _dechunk(raw: bytes) -> str:
    """The body of an HTTP/1.1 chunked response (headers included in ``raw``)."""
    _head, _, rest = raw.partition(b"\r\n\r\n")
    body = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(body).decode()


def test_a_slow_client_is_dropped_and_told_while_others_get_everything(
        sqlite_ctx: HubContext) -> None:
    ctx = sqlite_ctx
    ctx.live = LiveBroadcaster(queue_max=2_000, keepalive_s=5)
    base = now_ms() - 600_000
    batches, per_batch = 300, 200
    with serving(create_app(ctx)) as url:
        fast = Reader(f"{url}/api/v1/stream").start()
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing for now
        slow.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        slow.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: hub\r\n\r\n")
        wait_subscribers(ctx.live, 2)
        for b in range(batches):
            ctx.live.publish([_seq(b * per_batch + i, base) for i in range(per_batch)])
            time.sleep(0.002)
        fast.wait_for(batches * per_batch, timeout_s=30)
        assert ctx.live.subscribers == 1  # the slow one is gone, the fast one is not
        raw = b""
        slow.settimeout(10)
        while not raw.endswith(b"0\r\n\r\n"):
            chunk = slow.recv(1 << 20)
            assert chunk, "connection closed before the stream ended"
            raw += chunk
        slow.close()
    events, _ = parse_frames(_dechunk(raw))
    got = [e for e in events if e.event == "reading"]
    dropped = events[-1]
    assert dropped.event == "dropped"
    assert "too slow" in dropped.json()["reason"]
    assert dropped.json()["resume"] == got[-1].id == dropped.id
    assert 0 < len(got) < batches * per_batch
    assert [e.json()["value"] for e in got] == [float(i) for i in range(len(got))]
    values = [e.json()["value"] for e in fast.readings()]
    assert values == [float(i) for i in range(batches * per_batch)]
