"""Test helpers for the live stream: a real uvicorn server in a thread, and an SSE reader."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Event:
    event: str
    id: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_frames(text: str) -> tuple[list[Event], list[str]]:
    """Events and comment lines of a chunk of an event stream (complete frames only)."""
    events: list[Event] = []
    comments: list[str] = []
    for frame in text.split("\n\n"):
        name, ident, data = "message", None, []
        for line in frame.split("\n"):
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            events.append(Event(name, ident, "\n".join(data)))
    return events, comments


@dataclass
class Reader:
    """Reads an event stream in a thread, collecting events and comments."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    ended: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Reader:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        buffer = ""
        try:
            with httpx.Client(timeout=30) as client, client.stream(
                    "GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                self.response_headers = dict(response.headers)
                for chunk in response.iter_text():
                    self.raw.append(chunk)
                    buffer += chunk
                    complete, _, buffer = buffer.rpartition("\n\n")
                    if complete:
                        events, comments = parse_frames(complete)
                        self.events += events
                        self.comments += comments
                    if self._stop.is_set():
                        return
        except httpx.HTTPError:  # the server stopped under the stream
            pass
        finally:
            self.ended.set()

    def readings(self) -> list[Event]:
        return [e for e in self.events if e.event == "reading"]

    def wait_for(self, count: int, timeout_s: float = 10) -> list[Event]:
        """Wait until ``count`` reading events arrived; return them."""
        deadline = time.monotonic() + timeout_s
        while len(self.readings()) < count:
            assert time.monotonic() < deadline, (
                f"got {len(self.readings())} of {count} readings: {self.events[-3:]}")
            time.sleep(0.02)
        return self.readings()

    def close(self) -> None:
        self._stop.set()


def wait_subscribers(live: Any, count: int, timeout_s: float = 10) -> None:
    """Wait until the broadcaster has ``count`` clients (they subscribe once connected)."""
    deadline = time.monotonic() + timeout_s
    while live.subscribers < count:
        assert time.monotonic() < deadline, f"{live.subscribers} of {count} clients subscribed"
        time.sleep(0.02)


# -- load: many clients and a steady publisher, each in a process of its own ---------------

READING_MARK = b"event: reading\n"
DROPPED_MARK = b"event: dropped\n"


async def _count_events(port: int, path: str, expected: int, deadline: float) -> tuple[int, int]:
    """Connect one raw-socket client; count reading and dropped events until ``expected``
    readings arrived, the stream ended or the deadline passed."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: hub\r\n\r\n".encode())
    readings = dropped = 0
    tail = b""
    keep = len(READING_MARK) - 1
    try:
        while readings < expected and not dropped:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), left)
            except TimeoutError:
                break
            if not data:
                break
            chunk = tail + data
            readings += chunk.count(READING_MARK)
            dropped += chunk.count(DROPPED_MARK)
            tail = chunk[-keep:]
            readings -= tail.count(READING_MARK)  # counted again with the next chunk
            dropped -= tail.count(DROPPED_MARK)
    finally:
        writer.close()
    return readings, dropped


def run_clients(port: int, paths: list[str], expected: int, timeout_s: float,
                results: Any, connected: Any) -> None:
    """Process body: one concurrent stream per path; puts [(readings, dropped)] on
    ``results``. Sets ``connected`` once every request is sent."""
    import asyncio

    async def main() -> list[tuple[int, int]]:
        deadline = time.monotonic() + timeout_s
        tasks = [asyncio.create_task(_count_events(port, path, expected, deadline))
                 for path in paths]
        await asyncio.sleep(0.5)
        connected.set()
        return list(await asyncio.gather(*tasks))

    results.put(asyncio.run(main()))


def publish_steady(port: int, device: str, messages: int, per_message: int, rate_hz: float,
                   base_ms: int, started: Any) -> None:
    """Process body: an edge-like publisher, ``messages`` QoS 1 batches at ``rate_hz``."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from fabcity.codec import encode_batch
    from fabcity.reading import Reading

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{device}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    started.value = time.time()
    t0 = time.monotonic()
    infos = []
    for m in range(messages):
        pause = t0 + m / rate_hz - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        batch = [Reading("lab", device, "seq", "sequence", float(m * per_message + i),
                         base_ms + m * per_message + i, "1") for i in range(per_message)]
        infos.append(client.publish(f"fabcity/v1/lab/{device}/readings",
                                    encode_batch(m, batch), qos=1))
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
