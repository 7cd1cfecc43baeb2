"""The HTTP server's limits: how long a client may take to send its request header, how big
the header may be, how many connections are served at once.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but arms that timer
only once a response is complete: a client that connects and sends half a header (or one
byte a minute) holds its connection, a file descriptor and a slot forever. The protocol here
gives every request header a deadline, from the moment the connection opens (or the previous
response ends) to the end of the header; trickling bytes does not move it.
"""

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from hub.config import ApiConfig

__all__ = ["HeaderTimeoutProtocol", "uvicorn_config"]


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on every request header."""

    header_timeout_s: float = 10.0  # set per server by :func:`uvicorn_config`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._waiting_after: object = None  # the request before the header awaited

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_after:  # a new request: its header is complete
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        answered = self.cycle
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is answered:
            self._arm_header_deadline()  # the next request on this connection: same rule

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._waiting_after = self.cycle
        self._header_deadline = self.loop.call_later(self.header_timeout_s,
                                                     self._header_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()  # no answer: a client this slow is not reading one


def uvicorn_config(app: Any, api: ApiConfig, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of the hub's API from ``[api]``."""
    protocol = type("HubHttpProtocol", (HeaderTimeoutProtocol,),
                    {"header_timeout_s": api.header_timeout_s})
    options: dict[str, Any] = {
        "host": api.host, "port": api.port, "http": protocol,
        "timeout_keep_alive": api.keepalive_timeout_s,
        "h11_max_incomplete_event_size": api.max_header_bytes,
        "limit_concurrency": api.max_connections, "backlog": api.backlog,
        "log_level": "warning", "access_log": False, **overrides,
    }
    return uvicorn.Config(app, **options)
