"""Devices as an RFC 7946 GeoJSON FeatureCollection, for maps (Leaflet, QGIS, uMap…)."""

from typing import Any

from hub.api.answers import DevicesGeoJson
from hub.api.schemas import DevicePublic
from hub.api.serialise import ts_formatter
from hub.context import HubContext

__all__ = ["GEOJSON_MEDIA_TYPE", "devices_geojson", "geojson_schema"]

GEOJSON_MEDIA_TYPE = "application/geo+json"


def _latest_by_device(ctx: HubContext, sites: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(site, device) -> metric -> its newest reading; a metric measured by two sensors of one
    device is keyed ``sensor.metric``."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    fmt = ts_formatter()
    for site in sorted(sites):
        readings = ctx.storage.latest(site=site)
        counts: dict[tuple[str, str, str], int] = {}
        for r in readings:
            key3 = (r.site, r.device, r.metric)
            counts[key3] = counts.get(key3, 0) + 1
        for r in readings:
            name = r.metric if counts[(r.site, r.device, r.metric)] == 1 \
                else f"{r.sensor}.{r.metric}"
            out.setdefault((r.site, r.device), {})[name] = {
                "sensor": r.sensor, "value": r.value, "unit": r.unit, "ts": fmt(r.ts_ms)}
    return out


def devices_geojson(ctx: HubContext, devices: list[DevicePublic]) -> dict[str, Any]:
    """One Point feature per device with a location; the others are only counted."""
    located = [d for d in devices if d.location is not None]
    latest = _latest_by_device(ctx, {d.site for d in located})
    features = []
    for d in located:
        assert d.location is not None
        declared = ctx.site(d.site)
        features.append({
            "type": "Feature", "id": f"{d.site}/{d.device}",
            "geometry": {"type": "Point", "coordinates": [d.location.lon, d.location.lat]},
            "properties": {
                "site": d.site, "site_name": declared.name if declared else d.site,
                "device": d.device, "state": d.state, "last_seen": d.last_seen,
                "licence": ctx.licence(d.site), "latest": latest.get((d.site, d.device), {}),
            },
        })
    return {"type": "FeatureCollection", "features": features,
            "unlocated": len(devices) - len(located), "attribution": ctx.open_data.attribution}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def geojson_schema() -> dict[str, Any]:
    """JSON Schema of the FeatureCollection with no references (for the OpenAPI document)."""
    schema = DevicesGeoJson.model_json_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return inlined
