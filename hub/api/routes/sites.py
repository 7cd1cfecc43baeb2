"""``GET /api/v1/sites``: the sites, with their names, places, licences and devices."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from fabcity.names import SITE_PATTERN
from hub.api.deps import ContextDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.schemas import DevicePublic, SitePublic, SitesPublic, site_of, sites_of

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], responses=ERROR_RESPONSES)


@router.get("", response_model=SitesPublic)
def sites(ctx: ContextDep) -> SitesPublic:
    """Every declared site, and every site a device has spoken from, ordered by id."""
    devices = [DevicePublic.of(rec) for rec in ctx.registry.devices()]
    return sites_of(ctx.sites, devices, ctx.licence)


@router.get("/{site}", response_model=SitePublic,
            responses={404: {"description": "no such site"}})
def site(ctx: ContextDep,
         site: Annotated[str, Path(pattern=SITE_PATTERN,
                                   description="site id, e.g. fablab-bcn")]) -> SitePublic:
    """One site with its devices."""
    declared = ctx.site(site)
    devices = [DevicePublic.of(rec) for rec in ctx.registry.devices(site)]
    if declared is None and not devices:
        raise HTTPException(404, f"no site {site!r}: see /api/v1/sites")
    return site_of(site, declared, ctx.licence(site), devices)
