"""``GET /api/v1/machines``: kWh, hours running and idle, and starts of each machine."""

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from fabcity.reading import format_ts, now_ms
from hub.api.climate_models import MachinePublic, MachinesPublic
from hub.api.deps import ContextDep, SiteDep
from hub.api.errors import ERROR_RESPONSES, ApiError
from hub.api.params import parse_instant
from hub.climate.machines import MachineReport, machine_reports

router = APIRouter(prefix="/api/v1/machines", tags=["climate"], responses=ERROR_RESPONSES)

MAX_RANGE_MS = 366 * 86_400_000  # raw power and state are read: one year at most
CSV_COLUMNS = ("site", "device", "sensor", "name", "start", "end", "kwh", "hours_running",
               "hours_idle", "starts", "coverage", "kwh_source", "running_source")


def _cell(value: object) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _csv(reports: list[MachineReport]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for m in reports:
        for p in m.periods:
            writer.writerow([_cell(v) for v in (
                m.site, m.device, m.sensor, m.name, format_ts(p.period.start_ms),
                format_ts(p.period.end_ms), p.kwh, p.running_h, p.idle_h, p.starts,
                p.coverage, m.kwh_source, m.running_source)])
    return out.getvalue()


@router.get("", response_model=MachinesPublic,
            responses={200: {"content": {"text/csv": {}},
                             "description": "JSON, or CSV (one line per machine and period)"}})
def machines(
    ctx: ContextDep,
    site: SiteDep = None,
    start: Annotated[str, Query(description="RFC 3339 or relative, e.g. -7d; inclusive")] = "-7d",
    end: Annotated[str, Query(description="RFC 3339, relative or now; exclusive")] = "now",
    period: Annotated[Literal["day", "month"], Query(description="day or month (UTC)")] = "day",
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Response:
    """Per machine and UTC day (or month) of ``[start, end)``."""
    now = now_ms()
    start_ms, end_ms = parse_instant("start", start, now), parse_instant("end", end, now)
    if start_ms >= end_ms:
        raise ApiError("start", f"must be before end (start is {format_ts(start_ms)}, "
                                f"end is {format_ts(end_ms)})")
    if end_ms - start_ms > MAX_RANGE_MS:
        raise ApiError("end", "the range is longer than 366 days; ask for a year at most")
    reports = machine_reports(ctx.storage, ctx.site, site, start_ms, end_ms, period)
    sites = sorted({m.site for m in reports} | ({site} if site else set()))
    headers = {"X-Data-Licence": ", ".join(dict.fromkeys(ctx.licence(s) for s in sites))
               or ctx.licence(None)}
    if format == "csv":
        headers["Content-Disposition"] = 'attachment; filename="fabcity-machines.csv"'
        return Response(_csv(reports), media_type="text/csv; charset=utf-8", headers=headers)
    body = MachinesPublic(start=format_ts(start_ms), end=format_ts(end_ms), period=period,
                          count=len(reports), machines=[MachinePublic.of(m) for m in reports])
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)
