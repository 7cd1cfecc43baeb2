from fastapi.testclient import TestClient

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
    assert body == {"count": 2, "sites": [
        {"site": "fablab-bcn", "devices": 3, "online": 2, "location": {"lat": 41.5, "lon": 2.5}},
        {"site": "street-12", "devices": 1, "online": 0, "location": None},
    ]}


def test_sites_empty_before_any_device(client: TestClient) -> None:
    assert client.get("/api/v1/sites").json() == {"count": 0, "sites": []}


def test_sites_reject_unknown_parameter(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/sites?site=fablab-bcn"), "site")
    assert "unknown parameter" in message and "none" in message
