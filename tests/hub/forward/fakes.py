"""Small local stand-ins for the networks' push APIs, written from their public documentation.

Each records every request (path, headers, parsed body) and answers what the real service
documents (201 on success, 400 for a malformed body, 401 for a wrong box token), unless a test
scripts other answers first (a 500, a 429 with Retry-After, a 400, or a request left hanging).
"""

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OSM_LIMIT = 2500  # values per request, documented by openSenseMap
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Scripted:
    """An answer given instead of the documented one."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    hold: threading.Event | None = None  # wait for this before answering (a hub killed meanwhile)


@dataclass
class FakeService:
    """A recording server; ``check(request) -> (status, body)`` is the documented behaviour."""

    check: Callable[[Request], tuple[int, str]]
    requests: list[Request] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def wait_for(self, count: int, timeout_s: float = 30) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout_s), \
                f"{len(self.requests)} requests arrived, expected {count}"


@contextmanager
def serve(check: Callable[[Request], tuple[int, str]]) -> Iterator[FakeService]:
    service = FakeService(check)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            scripted = service.script.pop(0) if service.script else None
            with service.arrived:
                service.requests.append(request)
                service.arrived.notify_all()
            if scripted is not None:
                if scripted.hold is not None:
                    scripted.hold.wait(60)
                status, text, extra = scripted.status, scripted.body, scripted.headers
            else:
                (status, text), extra = service.check(request), {}
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                data = text.encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client is gone (killed)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()


def sensor_community(request: Request) -> tuple[int, str]:
    """The push API: POST /v1/push-sensor-data/ with X-Sensor and X-Pin, a JSON object with
    sensordatavalues, each value_type with its value as a string."""
    body = request.body
    if request.path != "/v1/push-sensor-data/":
        return 404, "not found"
    if not request.headers.get("x-sensor") or not request.headers.get("x-pin", "").isdigit():
        return 400, "X-Sensor and X-Pin are required"
    if request.headers.get("content-type") != "application/json":
        return 400, "JSON expected"
    values = body.get("sensordatavalues") if isinstance(body, dict) else None
    if not values or not all(isinstance(v.get("value"), str) and v.get("value_type")
                             for v in values):
        return 400, "sensordatavalues: [{value_type, value (a string)}] expected"
    return 201, ""


def opensensemap(box_id: str, token: str, sensors: set[str]) -> Callable[[Request],
                                                                        tuple[int, str]]:
    """POST /boxes/:boxId/data: the box token in Authorization, a JSON array of at most 2,500
    {sensor, value (string), createdAt (RFC 3339)} with sensors of this box."""

    def check(request: Request) -> tuple[int, str]:
        if request.path != f"/boxes/{box_id}/data":
            return 404, '{"code":"NotFound"}'
        if request.headers.get("authorization") != token:
            return 401, '{"code":"Unauthorized","message":"Box access token not valid!"}'
        body = request.body
        if not isinstance(body, list) or not 0 < len(body) <= OSM_LIMIT:
            return 422, '{"code":"UnprocessableEntity"}'
        for item in body:
            if item.get("sensor") not in sensors or not isinstance(item.get("value"), str) \
                    or not _RFC3339.match(item.get("createdAt", "")):
                return 422, '{"code":"UnprocessableEntity","message":"bad measurement"}'
            float(item["value"])
        return 201, "Measurements saved in box"

    return check
