"""``GET /api/v1/devices``: every device, online or not, and what it says it is."""

from fastapi import APIRouter

from hub.api.deps import ContextDep, SiteDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.schemas import DevicePublic, DevicesPublic, LocationPublic

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=ERROR_RESPONSES)


@router.get("", response_model=DevicesPublic)
def devices(ctx: ContextDep, site: SiteDep = None) -> DevicesPublic:
    """Devices ordered by site then name; ``state`` comes from their retained status;
    ``location`` is the device's own, else its declared site's."""
    found = [DevicePublic.of(rec) for rec in ctx.registry.devices(site)]
    for d in found:
        declared = ctx.site(d.site)
        if d.location is None and declared is not None and declared.lat is not None \
                and declared.lon is not None:
            d.location = LocationPublic(lat=declared.lat, lon=declared.lon)
    return DevicesPublic(count=len(found), devices=found)
