"""The API server's limits, against a real uvicorn on a free port: a request header has a
deadline (half a header, or one trickled byte at a time, is disconnected while normal clients
are served) and connections beyond ``max_connections`` get 503."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from hub.api.server import uvicorn_config
from hub.config import ApiConfig
from tests.servers import closed_by_peer, free_port, wait_for_port

HALF_HEADER = b"GET /ok HTTP/1.1\r\nHost: hub\r\nUser-Agent: slow"


async def _app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """A tiny ASGI app: 200 ``ok`` to any request."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


@contextmanager
def _server(**limits: object) -> Iterator[int]:
    port = free_port()
    config = uvicorn_config(_app, ApiConfig(port=port, **limits))  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        return data


def test_half_headers_are_disconnected_after_the_timeout_while_others_are_served() -> None:
    with _server(header_timeout_s=1.0) as port:
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        started = time.monotonic()
        for sock in slow:
            sock.sendall(HALF_HEADER)
        assert _get(port).startswith(b"HTTP/1.1 200")  # served while 200 clients stall
        assert all(closed_by_peer(sock, 3.0) for sock in slow)
        assert 0.9 < time.monotonic() - started < 3.0
        for sock in slow:
            sock.close()


def test_trickling_a_header_byte_by_byte_does_not_extend_the_deadline() -> None:
    with _server(header_timeout_s=1.0) as port, \
            socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        closed = False
        for byte in HALF_HEADER * 10:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > 3:
                break
        assert closed or closed_by_peer(sock, 0.5)
        assert time.monotonic() - started < 3


def test_a_kept_alive_connection_gets_a_new_deadline_for_its_next_header() -> None:
    with _server(header_timeout_s=1.0, keepalive_timeout_s=30) as port, \
            socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: hub\r\n\r\n")
        answer = b""
        while not answer.endswith(b"0\r\n\r\n"):  # the whole chunked answer
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        sock.sendall(HALF_HEADER)  # keep-alive is 30 s, but this header has 1 s
        assert closed_by_peer(sock, 3.0)


def test_a_complete_header_is_answered_even_when_it_took_most_of_the_timeout() -> None:
    with _server(header_timeout_s=1.5) as port, \
            socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(HALF_HEADER)
        time.sleep(1.0)
        sock.sendall(b"\r\nConnection: close\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_requests_beyond_max_connections_get_503() -> None:
    with _server(max_connections=5, header_timeout_s=30) as port:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        for sock in held:
            sock.sendall(HALF_HEADER)
        time.sleep(0.2)
        assert _get(port).startswith(b"HTTP/1.1 503")
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert _get(port).startswith(b"HTTP/1.1 200")


def test_a_header_longer_than_max_header_bytes_is_refused_before_it_ends() -> None:
    with _server(max_header_bytes=2048, header_timeout_s=30) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: hub\r\nX-Big: " + b"a" * 4096)
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
