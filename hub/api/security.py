"""Who may do what over HTTP: API keys on admin routes, rate limits on anonymous reads, a cap
on request bodies.

Open-data reads stay public. A request with a valid ``Authorization: Bearer`` key is not rate
limited; every other request under ``/api/`` takes a token from its client address's bucket
(``[api] rate_limit_per_s`` refill, ``rate_limit_burst`` size) and answers ``429`` with
``Retry-After`` when the bucket is empty, so one greedy client cannot starve the others.
"""

import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request

from hub.apikeys import ApiKey, ApiKeys, Scope
from hub.config import ApiConfig

__all__ = ["AccessLimits", "TokenBuckets", "bearer_key", "require_scope"]

MAX_TRACKED_CLIENTS = 10_000  # least recently seen addresses beyond this are forgotten
RATE_LIMITED_PREFIX = "/api/"
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Message, Receive, Send], Awaitable[None]]


class TokenBuckets:
    """One token bucket per client key; bounded memory (LRU)."""

    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Take a token: 0 if allowed, else the seconds until one is free."""
        now = self.clock()
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


def bearer_key(headers: Any) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, if any."""
    value = headers.get("authorization") if headers is not None else None
    if not value:
        return None
    scheme, _, key = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def _keys_of(ctx: Any) -> ApiKeys | None:
    return getattr(ctx, "api_keys", None)


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail, "errors": []}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class AccessLimits:
    """ASGI middleware: body size cap for every request, token buckets for anonymous ones."""

    def __init__(self, app: Asgi, ctx: Any) -> None:
        self.app = app
        self.ctx = ctx
        api: ApiConfig = getattr(ctx, "api", None) or ApiConfig()
        self.max_body = api.max_body_bytes
        self.buckets = (TokenBuckets(api.rate_limit_per_s, api.rate_limit_burst)
                        if api.rate_limit_per_s > 0 else None)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.buckets is not None and scope["path"].startswith(RATE_LIMITED_PREFIX):
            key = bearer_key(headers)
            keys = _keys_of(self.ctx)
            if key is None or keys is None or keys.check(key) is None:
                client = (scope.get("client") or ("unknown", 0))[0]
                wait = self.buckets.take(client)
                if wait > 0:
                    await _answer(send, 429, "too many requests from this address; retry "
                                  "later or use an API key",
                                  {"Retry-After": str(max(1, math.ceil(wait)))})
                    return
        if scope["method"] in _BODY_METHODS:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await _answer(send, 413, f"request body over {self.max_body} bytes", {})
                return
            bounded = await self._bounded_body(receive)
            if bounded is None:
                await _answer(send, 413, f"request body over {self.max_body} bytes", {})
                return
            receive = bounded
        await self.app(scope, receive, send)

    async def _bounded_body(self, receive: Receive) -> Receive | None:
        """Read the whole body (admin bodies are small) and replay it; None past the cap."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            if not message.get("more_body", False):
                break
        replayed = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return replayed.pop() if replayed else await receive()

        return replay


def require_scope(scope: Scope) -> Callable[[Request], ApiKey]:
    """A dependency: 401 without a valid, unrevoked key; 403 when its scope falls short."""

    def dependency(request: Request) -> ApiKey:
        key = bearer_key(request.headers)
        keys = _keys_of(request.app.state.ctx)
        challenge = {"WWW-Authenticate": 'Bearer realm="fabcity hub"'}
        if key is None:
            raise HTTPException(401, "an API key is required: Authorization: Bearer <key>",
                                headers=challenge)
        record = keys.check(key) if keys is not None else None
        if record is None:
            raise HTTPException(401, "unknown or revoked API key", headers=challenge)
        if not record.allows(scope):
            raise HTTPException(403, f"this key has scope {record.scope!r}; {scope!r} needed")
        return record

    return dependency
