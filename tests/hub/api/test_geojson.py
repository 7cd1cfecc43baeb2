"""``GET /api/v1/devices?format=geojson``: a map layer of the located devices."""

from fastapi.testclient import TestClient

from fabcity.reading import format_ts
from hub.api import create_app
from hub.config import SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import Storage
from tests.hub.api.conftest import T0_MS, announce, reading


def test_located_devices_become_point_features_with_latest_values(
        ctx: HubContext, storage: Storage, registry: DeviceRegistry) -> None:
    ctx.sites = [SiteConfig(id="fablab-bcn", name="Fab Lab Barcelona", lat=41.3968, lon=2.1947,
                            licence="ODbL-1.0")]
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS)  # takes the site's place
    announce(registry, "street-12", "pi-air", "offline", T0_MS, location={"lat": 41.4, "lon": 2.2})
    announce(registry, "street-12", "pi-lost", "online", T0_MS)  # nowhere: left out
    storage.write([reading("pm2_5", 12.5, T0_MS, site="street-12", device="pi-air"),
                   reading("pm2_5", 14.0, T0_MS + 1000, site="street-12", device="pi-air"),
                   reading("power", 800.0, T0_MS, sensor="power")])
    response = TestClient(create_app(ctx)).get("/api/v1/devices", params={"format": "geojson"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection" and body["unlocated"] == 1
    laser, air = body["features"]
    assert laser["geometry"] == {"type": "Point", "coordinates": [2.1947, 41.3968]}  # lon, lat
    assert laser["properties"] == {
        "site": "fablab-bcn", "site_name": "Fab Lab Barcelona", "device": "pi-laser",
        "state": "online", "last_seen": format_ts(T0_MS), "licence": "ODbL-1.0",
        "latest": {"power": {"sensor": "power", "value": 800.0, "unit": "W",
                             "ts": format_ts(T0_MS)}}}
    assert air["id"] == "street-12/pi-air"
    assert air["geometry"]["coordinates"] == [2.2, 41.4]
    assert air["properties"]["site_name"] == "street-12"
    assert air["properties"]["latest"] == {"pm2_5": {"sensor": "air", "value": 14.0,
                                                     "unit": "ug/m3",
                                                     "ts": format_ts(T0_MS + 1000)}}


def test_geojson_of_no_device_is_an_empty_collection(client: TestClient) -> None:
    body = client.get("/api/v1/devices?format=geojson").json()
    assert body["features"] == [] and body["unlocated"] == 0


def test_devices_format_is_checked(client: TestClient) -> None:
    response = client.get("/api/v1/devices?format=kml")
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "format"
