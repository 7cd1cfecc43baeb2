"""``GET /api/v1/readings``: history, raw or downsampled, as JSON or a CSV download."""

import csv
import io
from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import Response

from fabcity.reading import Reading, format_ts
from hub.api.deps import ReadingsRequestDep, StorageDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.schemas import ReadingPublic, ReadingsPublic, ReadingsQueryPublic

router = APIRouter(prefix="/api/v1/readings", tags=["readings"], responses=ERROR_RESPONSES)

CSV_COLUMNS = ("site", "device", "sensor", "metric", "ts", "value", "unit", "flags")
TRUNCATED_HEADER = "X-Fabcity-Truncated"


def _csv(readings: Sequence[Reading]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in readings:
        writer.writerow((r.site, r.device, r.sensor, r.metric, format_ts(r.ts_ms), repr(r.value),
                         r.unit or "", " ".join(r.flags)))
    return out.getvalue()


@router.get(
    "",
    response_model=ReadingsPublic,
    responses={200: {"content": {"text/csv": {}},
                     "description": f"JSON, or CSV with format=csv; header {TRUNCATED_HEADER} "
                                    "says whether more readings matched than limit"}},
)
def readings(req: ReadingsRequestDep, storage: StorageDep) -> Response:
    """Readings in ``[start, end)``; with ``every``, one per bucket (``ts`` = bucket start)."""
    found = storage.query(req.query)
    truncated = len(found) > req.limit
    found = found[: req.limit]
    headers = {TRUNCATED_HEADER: "true" if truncated else "false"}
    if req.format == "csv":
        headers["Content-Disposition"] = 'attachment; filename="fabcity-readings.csv"'
        return Response(_csv(found), media_type="text/csv; charset=utf-8", headers=headers)
    q = req.query
    body = ReadingsPublic(
        query=ReadingsQueryPublic(
            site=q.site, device=q.device, sensor=q.sensor, metric=q.metric,
            start=format_ts(q.start_ms), end=format_ts(q.end_ms), every=req.every,
            agg=q.agg if req.every else None, limit=req.limit),
        count=len(found), truncated=truncated, readings=[ReadingPublic.of(r) for r in found],
    )
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)
