"""``GET /api/v1/readings``: history, raw or downsampled, as JSON pages or a streamed CSV."""

from collections.abc import Iterator
from dataclasses import replace
from operator import itemgetter
from typing import NamedTuple
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from fabcity.reading import Reading, format_ts, now_ms
from hub.api.answers import ReadingsAnswer
from hub.api.caching import etag_matches, etag_of
from hub.api.cursor import Cursor, read_after, series_of, stream_pages
from hub.api.deps import ContextDep, ReadingsRequest, ReadingsRequestDep, StorageDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.licence import licence_headers, licences_of
from hub.api.limits import gate_of
from hub.api.serialise import (
    CSV_COLUMNS,
    bucket_values_json,
    csv_rows,
    json_bytes,
    readings_json,
    series_json,
    ts_formatter,
)
from hub.api.shared_answers import SharedAnswer, answers_of, gzipped, shares_answer
from hub.context import HubContext
from hub.storage.base import Storage
from hub.storage.buckets import bucket_stats, counting_omitted, downsample_values

router = APIRouter(prefix="/api/v1/readings", tags=["readings"], responses=ERROR_RESPONSES)

TRUNCATED_HEADER = "X-Fabcity-Truncated"
OMITTED_HEADER = "X-Fabcity-Omitted-Buckets"  # downsampled buckets with no finite value
CSV_PAGE_ROWS = 10_000  # readings per storage read while streaming CSV
DAY_MS = 86_400_000
# Edge agents replay their buffers after an outage, so a range closed less than a day ago
# may still gain readings: cache it briefly; older ranges for a day.
RECENT_MAX_AGE_S = 60
CLOSED_MAX_AGE_S = 86_400
FINGERPRINT_EVERY_MS = 3_600_000 * 277_777_778  # ~31,700 years: one or two buckets per series


def _fingerprint(storage: Storage, req: ReadingsRequest) -> str:
    """ETag of a closed range: the query and per-series statistics of the data in it, so
    late readings (an edge replaying its buffer) change it without reading every row."""
    q = req.query
    # Through the rollups where they cover the range: a closed week is 168 hourly rows per
    # series instead of every raw point.
    stats = bucket_stats(storage, replace(q, every_ms=FINGERPRINT_EVERY_MS, limit=q.limit))
    summary = ";".join(f"{s.key}:{s.start_ms}:{s.count}:{s.sum!r}:{s.min!r}:{s.max!r}:"
                       f"{s.first!r}:{s.last!r}:{s.unit}" for s in stats)
    return etag_of(repr(q), req.format, req.tz or "", repr(req.limit_given),
                   req.cursor.encode() if req.cursor else "", summary)


def _cache_headers(req: ReadingsRequest, etag: str | None) -> dict[str, str]:
    if not req.closed or etag is None:
        return {"Cache-Control": "no-cache"}
    recent = req.query.end_ms > now_ms() - DAY_MS
    age = RECENT_MAX_AGE_S if recent else CLOSED_MAX_AGE_S
    return {"Cache-Control": f"public, max-age={age}", "ETag": etag}


def _next_url(request: Request, req: ReadingsRequest, cursor: Cursor) -> str:
    """The same query with absolute times (a relative start must not move between pages)."""
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params["start"] = format_ts(req.query.start_ms)
    params["end"] = format_ts(req.query.end_ms)
    params["cursor"] = cursor.encode()
    return f"{request.url.path}?{urlencode(params)}"


def _query_echo(req: ReadingsRequest) -> dict[str, object]:
    q = req.query
    return {"site": q.site, "device": q.device, "sensor": q.sensor, "metric": q.metric,
            "start": format_ts(q.start_ms), "end": format_ts(q.end_ms), "every": req.every,
            "agg": q.agg if req.every else None, "limit": req.limit}


def _sites_in(storage: Storage, req: ReadingsRequest) -> list[str]:
    """Sites whose data can appear in the answer (for the licence before streaming)."""
    if req.query.site is not None:
        return [req.query.site]
    return sorted({key[0] for key in series_of(storage, req.query)})


def _csv_preamble(ctx: HubContext, req: ReadingsRequest, request: Request,
                  licences: dict[str, str]) -> str:
    by_licence: dict[str, list[str]] = {}
    for site, spdx in licences.items():
        by_licence.setdefault(spdx, []).append(site)
    lines = [f"# licence: {spdx} ({' '.join(sites)})" for spdx, sites in by_licence.items()]
    if not lines:
        lines = [f"# licence: {ctx.open_data.licence}"]
    lines.append(f"# attribution: {ctx.open_data.attribution}")
    echo = ", ".join(f"{k}={v}" for k, v in _query_echo(req).items() if v is not None)
    lines.append(f"# query: {echo}, tz={req.tz or 'UTC'}")
    lines.append(f"# source: {request.url.path}?{request.url.query}")
    return "\n".join(lines) + "\n" + ",".join(CSV_COLUMNS) + "\n"


def _csv_body(storage: Storage, req: ReadingsRequest, preamble: str,
              first: list[Reading] | None) -> Iterator[str]:
    """The preamble then the rows, one storage page at a time."""
    yield preamble
    fmt = ts_formatter(req.zone)
    if first is not None:  # a limited answer, read whole to know whether it was cut
        for i in range(0, len(first), CSV_PAGE_ROWS):
            yield csv_rows(first[i:i + CSV_PAGE_ROWS], fmt)
        return
    for page in stream_pages(storage, req.query, CSV_PAGE_ROWS, after=req.cursor):
        yield csv_rows(page, fmt)


@router.get(
    "",
    response_model=ReadingsAnswer,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": f"JSON, or CSV with format=csv; header {TRUNCATED_HEADER} "
                                    "says whether more readings matched than limit"},
               304: {"description": "not modified since the ETag given in If-None-Match"}},
)
async def readings(req: ReadingsRequestDep, storage: StorageDep, ctx: ContextDep,
                   request: Request) -> Response:
    """Readings in ``[start, end)``; with ``every``, one per bucket (``ts`` = bucket start).

    JSON answers hold at most ``limit`` readings; ``next`` (and a ``Link: rel="next"``
    header) continues after them. CSV streams the whole answer unless ``limit`` is given."""
    if not shares_answer(request.query_params):
        return await run_in_threadpool(_answer, req, storage, ctx, request)
    key = f"{request.url.path}?{request.url.query}"
    shared = await answers_of(request.app).answer(
        key, req.now_ms, lambda: _lead(req, storage, ctx, request))
    encoded = shared.body_gzip if _accepts_gzip(request) else None
    return _respond(request, shared.headers, shared.body, encoded)


async def _lead(req: ReadingsRequest, storage: Storage, ctx: HubContext,
                request: Request) -> SharedAnswer:
    """Compute a live answer for every identical request (:mod:`hub.api.shared_answers`),
    holding a storage query slot as any other history query does."""
    gate = gate_of(request.app, ctx.api)
    await gate.acquire()
    try:
        def work() -> SharedAnswer:
            headers, body = _json_parts(storage, ctx, req, request, _cache_headers(req, None))
            body_gzip = gzipped(body)
            # The gzip form names the body as well as the body does, and is a tenth of it.
            headers["ETag"] = etag_of(body_gzip if body_gzip is not None else body)
            return SharedAnswer(req.now_ms, headers, body, body_gzip)
        return await run_in_threadpool(work)
    finally:
        gate.release()


def _answer(req: ReadingsRequest, storage: Storage, ctx: HubContext,
            request: Request) -> Response:
    """Any readings answer, computed for this request alone (in a worker thread)."""
    inm = request.headers.get("if-none-match")
    etag = _fingerprint(storage, req) if req.closed else None
    cache = _cache_headers(req, etag)
    if etag is not None and etag_matches(inm, etag):
        return Response(status_code=304, headers=cache)
    if req.format == "csv":
        return _csv(ctx, storage, req, request, cache)
    headers, body = _json_parts(storage, ctx, req, request, cache)
    if etag is None:
        headers["ETag"] = etag_of(body)
    # Compressed here (ISA-L, in this worker thread) rather than by the gzip middleware.
    encoded = gzipped(body) if _accepts_gzip(request) else None
    return _respond(request, headers, body, encoded)


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


class _Page(NamedTuple):
    """One JSON page: the readings array, how many, whether cut, its cursor, its sites."""

    readings: bytes
    size: int
    truncated: bool
    cursor: Cursor | None
    sites: list[str]


def _page(storage: Storage, req: ReadingsRequest) -> _Page:
    found = read_after(storage, req.query, req.cursor, req.limit + 1)
    truncated = len(found) > req.limit
    found = found[: req.limit]
    return _Page(readings_json(found), len(found), truncated,
                 Cursor.after(found[-1]) if truncated else None, [r.site for r in found])


def _one_series_page(storage: Storage, req: ReadingsRequest) -> _Page | None:
    """A raw page of one named series straight from the stored rows (no :class:`Reading`
    per point), when the back-end reads so; the same bytes as :func:`_page`. A cursor of
    such a query lies in that series (``Cursor.check``): the page goes on after it."""
    q = req.query
    site, device, sensor, metric = q.site, q.device, q.sensor, q.metric
    if (q.every_ms is not None or site is None or device is None or sensor is None
            or metric is None):
        return None
    start = q.start_ms if req.cursor is None else max(q.start_ms, req.cursor.ts_ms + 1)
    found = storage.series_points(replace(q, start_ms=start, limit=req.limit + 1))
    if found is None:
        return None
    truncated = len(found.rows) > req.limit
    rows = found.rows[: req.limit]
    names = (site, device, sensor, metric)
    return _Page(series_json(names, found.unit, rows), len(rows), truncated,
                 Cursor(*names, rows[-1][0]) if truncated else None, [site] if rows else [])


def _rollup_buckets_page(storage: Storage, req: ReadingsRequest) -> _Page | None:
    """A first downsampled page whose buckets are the rollups' own, from the values the
    back-end works out (no :class:`Reading` per bucket), when it does; the same bytes as
    :func:`_page`. Later pages (a cursor) go the general way."""
    if req.query.every_ms is None or req.cursor is not None:
        return None
    found = downsample_values(storage, replace(req.query, limit=req.limit + 1))
    if found is None:
        return None
    names, rows = found
    truncated = len(rows) > req.limit
    rows = rows[: req.limit]
    nxt = None
    if truncated:
        series, start_ms, _ = rows[-1]
        nxt = Cursor(*names[series][:4], start_ms)
    sites = {names[series][0] for series in set(map(itemgetter(0), rows))}
    return _Page(bucket_values_json(names, rows), len(rows), truncated, nxt, list(sites))


def _json_parts(storage: Storage, ctx: HubContext, req: ReadingsRequest, request: Request,
                cache: dict[str, str]) -> tuple[dict[str, str], bytes]:
    """The headers (ETag aside) and body of a JSON answer."""
    with counting_omitted() as omitted:
        page = (_one_series_page(storage, req) or _rollup_buckets_page(storage, req)
                or _page(storage, req))
    rows, count, truncated, nxt, sites = page
    licences = licences_of(ctx, sites)
    headers = {**cache, TRUNCATED_HEADER: "true" if truncated else "false",
               **licence_headers(licences.values() or [ctx.open_data.licence])}
    if req.every:
        headers[OMITTED_HEADER] = str(omitted.count)
    if nxt is not None:
        link = f'<{_next_url(request, req, nxt)}>; rel="next"'
        headers["Link"] = f"{link}, {headers['Link']}" if "Link" in headers else link
    body = json_bytes({
        "query": _query_echo(req), "count": count, "truncated": truncated,
        "readings": orjson.Fragment(rows), "next": nxt.encode() if nxt else None,
        "licence": licences, "attribution": ctx.open_data.attribution,
    })
    return headers, body


def _respond(request: Request, headers: dict[str, str], body: bytes,
             body_gzip: bytes | None) -> Response:
    """304 when the client holds this ETag; else the body (already gzipped when given)."""
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(b"", media_type="application/json",
                        headers={**headers, "Content-Length": str(len(body))})
    if body_gzip is not None:  # the gzip middleware passes an encoded body through
        return Response(body_gzip, media_type="application/json",
                        headers={**headers, "Content-Encoding": "gzip",
                                 "Vary": "Accept-Encoding"})
    return Response(body, media_type="application/json", headers=headers)


router.add_api_route("", readings, methods=["HEAD"], include_in_schema=False)


def _csv(ctx: HubContext, storage: Storage, req: ReadingsRequest, request: Request,
         cache: dict[str, str]) -> Response:
    licences = licences_of(ctx, _sites_in(storage, req))
    headers = {**cache, **licence_headers(licences.values() or [ctx.open_data.licence]),
               "Content-Disposition": 'attachment; filename="fabcity-readings.csv"'}
    first = None
    truncated = False
    if req.limit_given is not None:
        first = read_after(storage, req.query, req.cursor, req.limit + 1)
        truncated = len(first) > req.limit
        first = first[: req.limit]
        if truncated:
            link = f'<{_next_url(request, req, Cursor.after(first[-1]))}>; rel="next"'
            headers["Link"] = f"{link}, {headers['Link']}" if "Link" in headers else link
    headers[TRUNCATED_HEADER] = "true" if truncated else "false"
    media = "text/csv; charset=utf-8"
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=media)
    preamble = _csv_preamble(ctx, req, request, licences)
    return StreamingResponse(_csv_body(storage, req, preamble, first), media_type=media,
                             headers=headers)
