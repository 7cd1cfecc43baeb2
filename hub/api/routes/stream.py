"""``GET /api/v1/stream``: every reading as it is stored, as server-sent events.

A plain ``StreamingResponse`` of ``text/event-stream``: the frames of many events are written
in one chunk (what :mod:`hub.live` renders once per filter), which is what lets one event
loop feed hundreds of clients. Resume and drop policy: :mod:`hub.live`, :mod:`hub.live_replay`.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from fabcity.errors import StorageUnavailable
from fabcity.reading import format_ts, now_ms
from hub.api.deps import ContextDep, DeviceDep, MetricDep, SiteDep
from hub.api.errors import ERROR_RESPONSES, ApiError
from hub.context import HubContext
from hub.live import (
    KEEPALIVE_FRAME,
    Cursor,
    LiveFilter,
    Mark,
    dropped_frame,
    format_cursor,
    parse_cursor,
    render,
)
from hub.live_replay import replay

router = APIRouter(prefix="/api/v1/stream", tags=["readings"], responses=ERROR_RESPONSES)

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


def _gap_frame(from_ms: int, to_ms: int) -> bytes:
    data = json.dumps({"from": format_ts(from_ms), "to": format_ts(to_ms),
                       "reason": "more missed than a resume replays; fetch this span from "
                                 "/api/v1/readings"}, separators=(",", ":"))
    return f"event: gap\ndata: {data}\n\n".encode()


async def _events(ctx: HubContext, flt: LiveFilter, cursor: Cursor | None) -> AsyncIterator[bytes]:
    live = ctx.live
    sub = live.subscribe(flt)  # before the replay's query: nothing stored after it is missed
    try:
        yield f"retry: {live.retry_ms}\n\n".encode()
        if cursor is not None:
            sub.mark = Mark(cursor, format_cursor(cursor).encode())
            try:
                missed = await run_in_threadpool(replay, ctx.storage, flt, cursor, now_ms())
            except StorageUnavailable as exc:
                live.drop(sub, f"storage unavailable, cannot replay: {exc}")
            else:
                if missed.gap is not None:
                    yield _gap_frame(*missed.gap)
                frames, sub.mark, _ = render(missed.items, sub.mark)
                if frames:
                    yield frames
                sub.dedupe = {item.key for item in missed.items}
                sub.dedupe_until = live.seq + 1  # later batches were stored after the query
        while True:
            frames = sub.take()
            if frames:
                yield frames
                continue
            if sub.dropped is not None:
                yield dropped_frame(sub.dropped, sub.mark)
                return
            sub.wake.clear()
            try:
                async with asyncio.timeout(live.keepalive_s):
                    await sub.wake.wait()
            except TimeoutError:
                yield KEEPALIVE_FRAME
    finally:
        live.unsubscribe(sub)


@router.get(
    "",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "server-sent events: `reading`, `gap`, `dropped`"}},
)
async def stream(
    ctx: ContextDep,
    site: SiteDep = None,
    device: DeviceDep = None,
    metric: MetricDep = None,
    last_event_id: Annotated[str | None, Header(
        alias="Last-Event-ID",
        description="resume after this event id: the missed readings are replayed")] = None,
) -> StreamingResponse:
    """Each reading as it is stored; filters as ``/api/v1/latest``."""
    cursor = None
    if last_event_id:
        try:
            cursor = parse_cursor(last_event_id.strip())
        except ValueError as exc:
            raise ApiError("Last-Event-ID", str(exc)) from None
    flt = LiveFilter(site=site, device=device, metric=metric)
    return StreamingResponse(_events(ctx, flt, cursor), media_type="text/event-stream",
                             headers=HEADERS)
