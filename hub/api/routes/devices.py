"""``GET /api/v1/devices``: every device, online or not, and what it says it is."""

from fastapi import APIRouter

from hub.api.deps import RegistryDep, SiteDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.schemas import DevicePublic, DevicesPublic

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=ERROR_RESPONSES)


@router.get("", response_model=DevicesPublic)
def devices(registry: RegistryDep, site: SiteDep = None) -> DevicesPublic:
    """Devices ordered by site then name; ``state`` comes from their retained status."""
    found = [DevicePublic.of(rec) for rec in registry.devices(site)]
    return DevicesPublic(count=len(found), devices=found)
