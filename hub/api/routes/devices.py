"""``GET /api/v1/devices``: every device, online or not, and what it says it is; also as a
GeoJSON FeatureCollection for maps."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.api.deps import ContextDep, SiteDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.geojson import GEOJSON_MEDIA_TYPE, devices_geojson, geojson_schema
from hub.api.licence import licence_headers
from hub.api.schemas import DevicePublic, DevicesPublic, LocationPublic
from hub.api.serialise import json_bytes

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=ERROR_RESPONSES)


@router.get("", response_model=DevicesPublic,
            responses={200: {"content": {GEOJSON_MEDIA_TYPE: {"schema": geojson_schema()}},
                "description": "JSON, or a GeoJSON FeatureCollection with format=geojson"}})
def devices(ctx: ContextDep, site: SiteDep = None,
            format: Annotated[Literal["json", "geojson"], Query(
                description="json, or geojson: one Point feature per located device with "
                            "its latest values")] = "json") -> Response:
    """Devices ordered by site then name; ``state`` comes from their retained status;
    ``location`` is the device's own, else its declared site's."""
    found = [DevicePublic.of(rec) for rec in ctx.registry.devices(site)]
    for d in found:
        declared = ctx.site(d.site)
        if d.location is None and declared is not None and declared.lat is not None \
                and declared.lon is not None:
            d.location = LocationPublic(lat=declared.lat, lon=declared.lon)
    headers = licence_headers([ctx.licence(s) for s in sorted({d.site for d in found})]
                              or [ctx.open_data.licence])
    if format == "geojson":
        body = json_bytes(devices_geojson(ctx, found))
        return Response(body, media_type=GEOJSON_MEDIA_TYPE, headers=headers)
    return Response(DevicesPublic(count=len(found), devices=found).model_dump_json(),
                    media_type="application/json", headers=headers)
