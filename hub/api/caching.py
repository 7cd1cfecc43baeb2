"""HTTP caching and licence headers for every API answer, in one ASGI middleware.

- ``Cache-Control``: ``no-store`` for health and metrics (a stale health check misleads),
  ``no-cache`` (revalidate each time) for the rest unless a route chose otherwise.
- ``ETag``: a hash of the body for complete (non-streamed) 200 answers, unless the route set
  one (readings hash the query and a fingerprint of the data instead of the body).
- ``If-None-Match`` matching the ETag answers 304 without a body.
- ``X-Data-Licence`` (and ``Link rel="license"``): the hub's licence unless the route named
  the licences of the sites in its answer.
"""

import hashlib
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.licence import LICENCE_HEADER, licence_headers
from hub.context import HubContext

__all__ = ["HttpCaching", "etag_matches", "etag_of"]

NO_STORE_PATHS = ("/api/v1/health", "/metrics")
#: Routes that set their own ETag (their bodies are large or time-stamped).
OWN_ETAG_PATHS = ("/api/v1/readings",)
MAX_HASHED_BYTES = 32 * 1024 * 1024
# Headers a 304 keeps (RFC 9110 15.4.5); the body's own are dropped.
_KEEP_ON_304 = {"etag", "cache-control", "vary", "content-location", "date", "expires", "link",
                "x-data-licence", "access-control-allow-origin", "access-control-expose-headers"}


def etag_of(*parts: bytes | str) -> str:
    """A strong ETag: a short hash of the parts."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return f'"{h.hexdigest()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, as GET wants)."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


class HttpCaching:
    """ASGI middleware adding the caching and licence headers described above."""

    def __init__(self, app: ASGIApp, ctx: HubContext) -> None:
        self.app = app
        self.ctx = ctx

    def _licences(self, path: str) -> list[str]:
        ctx = self.ctx
        if path.startswith("/api/v1/sites/"):
            return [ctx.licence(path.removeprefix("/api/v1/sites/").split("/")[0])]
        if path == "/api/v1/sites":
            return [ctx.open_data.licence, *(s.licence for s in ctx.sites)]
        return [ctx.open_data.licence]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith("/api/") or path == "/metrics"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if_none_match = request.headers.get("if-none-match")
        hashable = (request.method == "GET" and not _under(path, NO_STORE_PATHS)
                    and not _under(path, OWN_ETAG_PATHS))
        start: Message | None = None
        parts: list[bytes] = []
        state = {"buffer": False, "swallow": False}

        async def send_start(message: Message) -> None:
            headers = MutableHeaders(scope=message)
            if message["status"] == 200 and etag_matches(if_none_match, headers.get("etag", "")):
                kept = [(k, v) for k, v in message["headers"]
                        if k.decode("latin-1").lower() in _KEEP_ON_304]
                message = {"type": "http.response.start", "status": 304, "headers": kept}
                state["swallow"] = True
            await send(message)

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    no_store = _under(path, NO_STORE_PATHS)
                    headers["Cache-Control"] = "no-store" if no_store else "no-cache"
                if LICENCE_HEADER.lower() not in headers:
                    for name, value in licence_headers(self._licences(path)).items():
                        if name == "Link" and "link" in headers:
                            value = f"{headers['link']}, {value}"
                        headers[name] = value
                length = Headers(raw=message["headers"]).get("content-length")
                if (hashable and message["status"] == 200 and "etag" not in headers
                        and length is not None and int(length) <= MAX_HASHED_BYTES):
                    start, state["buffer"] = message, True
                    return
                await send_start(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            more = message.get("more_body", False)
            if state["buffer"]:
                parts.append(message.get("body", b""))
                if more:
                    return
                assert start is not None
                body = b"".join(parts)
                MutableHeaders(scope=start)["ETag"] = etag_of(body)
                await send_start(start)
                message = {"type": "http.response.body", "body": body, "more_body": False}
            if state["swallow"]:
                if not more:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, wrapped)
