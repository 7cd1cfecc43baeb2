"""``GET /api/v1/latest``: the newest reading of every series (what the live page polls)."""

from fastapi import APIRouter

from fabcity.reading import format_ts, now_ms
from hub.api.deps import DeviceDep, MetricDep, SiteDep, StorageDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.schemas import LatestPublic, ReadingPublic

router = APIRouter(prefix="/api/v1/latest", tags=["readings"], responses=ERROR_RESPONSES)


@router.get("", response_model=LatestPublic)
def latest(storage: StorageDep, site: SiteDep = None, device: DeviceDep = None,
           metric: MetricDep = None) -> LatestPublic:
    """One reading per (site, device, sensor, metric), ordered by those names."""
    found = [ReadingPublic.of(r) for r in storage.latest(site=site, device=device, metric=metric)]
    return LatestPublic(now=format_ts(now_ms()), count=len(found), readings=found)
