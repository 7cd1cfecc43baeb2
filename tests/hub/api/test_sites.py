from fastapi.testclient import TestClient

from hub.api import create_app
from hub.config import SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from tests.hub.api.conftest import T0_MS, announce, rejected


def test_sites_count_devices_and_online_and_average_location(
        client: TestClient, registry: DeviceRegistry) -> None:
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS,
             location={"lat": 41.0, "lon": 2.0})
    announce(registry, "fablab-bcn", "pi-cnc", "offline", T0_MS,
             location={"lat": 42.0, "lon": 3.0})
    announce(registry, "fablab-bcn", "pi-door", "online", T0_MS)
    announce(registry, "street-12", "pi-air", "offline", T0_MS)
    body = client.get("/api/v1/sites").json()
    assert [(s["site"], s["name"], s["declared"], s["licence"], len(s["devices"]), s["online"],
             s["location"]) for s in body["sites"]] == [
        ("fablab-bcn", "fablab-bcn", False, "CC-BY-4.0", 3, 2, {"lat": 41.5, "lon": 2.5}),
        ("street-12", "street-12", False, "CC-BY-4.0", 1, 0, None),
    ]
    assert body["count"] == 2


def test_declared_sites_have_names_places_licences_and_lend_devices_their_place(
        ctx: HubContext, registry: DeviceRegistry) -> None:
    ctx.sites = [
        SiteConfig(id="fablab-bcn", name="Fab Lab Barcelona", kind="fablab", lat=41.3968,
                   lon=2.1947, description="Makers in Poblenou", licence="ODbL-1.0"),
        SiteConfig(id="empty-site", name="Not yet wired"),
    ]
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS)
    announce(registry, "fablab-bcn", "pi-air", "online", T0_MS, location={"lat": 41.4, "lon": 2.2})
    client = TestClient(create_app(ctx))
    body = client.get("/api/v1/sites").json()
    (empty, bcn) = body["sites"]  # ordered by id
    assert {k: bcn[k] for k in ("name", "kind", "description", "licence", "declared",
                                "location", "online")} == {
        "name": "Fab Lab Barcelona", "kind": "fablab", "description": "Makers in Poblenou",
        "licence": "ODbL-1.0", "declared": True, "location": {"lat": 41.3968, "lon": 2.1947},
        "online": 2}
    locations = {d["device"]: d["location"] for d in bcn["devices"]}
    assert locations == {"pi-air": {"lat": 41.4, "lon": 2.2},  # its own place wins
                         "pi-laser": {"lat": 41.3968, "lon": 2.1947}}
    assert (empty["name"], empty["devices"], empty["location"]) == ("Not yet wired", [], None)
    assert client.get("/api/v1/sites/fablab-bcn").json() == bcn
    assert client.get("/api/v1/devices?site=fablab-bcn").json()["devices"][1]["location"] == \
        {"lat": 41.3968, "lon": 2.1947}
    missing = client.get("/api/v1/sites/nowhere")
    assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]


def test_sites_empty_before_any_device(client: TestClient) -> None:
    assert client.get("/api/v1/sites").json() == {"count": 0, "sites": []}


def test_sites_reject_unknown_parameter(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/sites?site=fablab-bcn"), "site")
    assert "unknown parameter" in message and "none" in message
