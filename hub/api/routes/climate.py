"""``/api/v1/climate``: emissions by GPC scope per site, and the year's GPC inventory as CSV;
``router`` also carries ``/api/v1/machines``."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from fabcity.reading import format_ts, now_ms
from hub.api.climate_models import (
    EmissionRowPublic,
    EmissionsPublic,
    PeriodEmissionsPublic,
    SiteEmissionsPublic,
)
from hub.api.deps import ContextDep, SiteDep
from hub.api.errors import ERROR_RESPONSES, ApiError
from hub.api.routes import machines
from hub.climate.emissions import site_emissions, year_of
from hub.climate.inventory import inventory_csv, inventory_rows
from hub.climate.series import year_range
from hub.config import SiteConfig
from hub.context import HubContext

_climate = APIRouter(prefix="/api/v1/climate", tags=["climate"], responses=ERROR_RESPONSES)

LICENCE_HEADER = "X-Data-Licence"
YearDep = Annotated[int | None, Query(ge=1970, le=9998,
                                      description="calendar year (UTC); default this year")]


def _sites(ctx: HubContext, site: str | None) -> list[SiteConfig]:
    if site is None:
        return list(ctx.sites)
    declared = ctx.site(site)
    if declared is None:
        known = ", ".join(s.id for s in ctx.sites) or "none"
        raise ApiError("site", f"no [[sites]] entry with id {site!r}: emissions need its grid "
                               f"factor; declared sites: {known}")
    return [declared]


def _licence_header(ctx: HubContext, sites: list[SiteConfig]) -> dict[str, str]:
    licences = dict.fromkeys(ctx.licence(s.id) for s in sites) or {ctx.licence(None): None}
    return {LICENCE_HEADER: ", ".join(licences)}


@_climate.get("/emissions", response_model=EmissionsPublic)
def emissions(ctx: ContextDep, site: SiteDep = None, year: YearDep = None,
              period: Annotated[Literal["month", "day"], Query(
                  description="month or day (UTC)")] = "month") -> Response:
    """kWh (or m3), emission factor, tCO2e and coverage per period, scope and declared site."""
    year = year if year is not None else year_of(now_ms())
    sites = _sites(ctx, site)
    start_ms, end_ms = year_range(year)
    out = []
    for config in sites:
        found = site_emissions(ctx.storage, config, start_ms, end_ms, period)
        periods = []
        for p in found.periods:
            totals = [r.tco2e for r in p.rows]
            periods.append(PeriodEmissionsPublic(
                start=format_ts(p.period.start_ms), end=format_ts(p.period.end_ms),
                tco2e=None if None in totals else sum(t or 0.0 for t in totals),
                rows=[EmissionRowPublic.of(r) for r in p.rows]))
        out.append(SiteEmissionsPublic(site=config.id, name=config.name,
                                       gpc_sector=config.gpc_sector,
                                       licence=ctx.licence(config.id), periods=periods))
    body = EmissionsPublic(year=year, period=period, sites=out)
    return Response(body.model_dump_json(), media_type="application/json",
                    headers=_licence_header(ctx, sites))


@_climate.get("/inventory.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}},
                             "description": "every GPC row of the year, one per line"}})
def inventory(ctx: ContextDep, year: YearDep = None) -> Response:
    """The year's GPC rows over every declared site: figures where the hub measures,
    notation keys (NE, NO, IE) elsewhere."""
    year = year if year is not None else year_of(now_ms())
    start_ms, end_ms = year_range(year)
    found = [site_emissions(ctx.storage, s, start_ms, end_ms, "all") for s in ctx.sites]
    headers = _licence_header(ctx, list(ctx.sites))
    headers["Content-Disposition"] = f'attachment; filename="fabcity-gpc-{year}.csv"'
    return Response(inventory_csv(inventory_rows(found)), media_type="text/csv; charset=utf-8",
                    headers=headers)


router = APIRouter()
router.include_router(_climate)
router.include_router(machines.router)
