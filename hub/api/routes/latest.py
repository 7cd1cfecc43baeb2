"""``GET /api/v1/latest``: the newest reading of every series (what the live page polls)."""

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from fabcity.reading import format_ts, now_ms
from hub.api.answers import LatestAnswer
from hub.api.caching import etag_matches, etag_of
from hub.api.deps import ContextDep, DeviceDep, MetricDep, SiteDep, StorageDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.licence import licence_headers, licences_of
from hub.api.serialise import json_bytes, readings_json

router = APIRouter(prefix="/api/v1/latest", tags=["readings"], responses=ERROR_RESPONSES)


@router.get("", response_model=LatestAnswer,
            responses={304: {"description": "no series has a newer reading than the ETag's"}})
def latest(storage: StorageDep, ctx: ContextDep, request: Request, site: SiteDep = None,
           device: DeviceDep = None, metric: MetricDep = None) -> Response:
    """One reading per (site, device, sensor, metric), ordered by those names.

    The ETag covers the readings, not ``now``: polling with ``If-None-Match`` answers 304
    until some series has a new reading."""
    found = storage.latest(site=site, device=device, metric=metric)
    licences = licences_of(ctx, (r.site for r in found))
    rows = orjson.Fragment(readings_json(found))
    etag = etag_of(json_bytes([rows, licences, ctx.open_data.attribution]))
    headers = {"ETag": etag, "Cache-Control": "no-cache",
               **licence_headers(licences.values() or [ctx.open_data.licence])}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    body = json_bytes({"now": format_ts(now_ms()), "count": len(found), "readings": rows,
                       "licence": licences, "attribution": ctx.open_data.attribution})
    return Response(body, media_type="application/json", headers=headers)
