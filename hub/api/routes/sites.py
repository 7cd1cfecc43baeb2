"""``GET /api/v1/sites``: the sites, with how many devices each has and how many are online."""

from fastapi import APIRouter

from hub.api.deps import RegistryDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.schemas import DevicePublic, SitesPublic, sites_of

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], responses=ERROR_RESPONSES)


@router.get("", response_model=SitesPublic)
def sites(registry: RegistryDep) -> SitesPublic:
    """Every site that has at least one known device."""
    return sites_of([DevicePublic.of(rec) for rec in registry.devices()])
