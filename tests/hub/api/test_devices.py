from fastapi.testclient import TestClient

from fabcity.reading import format_ts
from hub.registry import DeviceRegistry
from tests.hub.api.conftest import T0_MS, announce, rejected

LASER_META = {
    "kind": "machine", "name": "Laser cutter", "location": {"lat": 41.39, "lon": 2.19},
    "sensors": [{"name": "power", "driver": "current_clamp", "metrics": {"power": "W"}}],
    "firmware": "1.2.0",
}


def test_device_shows_state_last_seen_and_meta(client: TestClient,
                                               registry: DeviceRegistry) -> None:
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS, **LASER_META)
    body = client.get("/api/v1/devices").json()
    assert body["count"] == 1
    device = body["devices"][0]
    assert device["site"] == "fablab-bcn" and device["device"] == "pi-laser"
    assert device["state"] == "online"
    assert device["last_seen"] == format_ts(T0_MS)
    assert device["meta"]["kind"] == "machine"
    assert device["meta"]["name"] == "Laser cutter"
    assert device["meta"]["location"] == {"lat": 41.39, "lon": 2.19}
    assert device["meta"]["sensors"] == [
        {"name": "power", "driver": "current_clamp", "metrics": {"power": "W"}}]


def test_last_will_turns_device_offline(client: TestClient, registry: DeviceRegistry) -> None:
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS)
    announce(registry, "fablab-bcn", "pi-laser", "offline", T0_MS + 5_000)
    device = client.get("/api/v1/devices").json()["devices"][0]
    assert device["state"] == "offline"
    assert device["last_seen"] == format_ts(T0_MS + 5_000)


def test_device_heard_only_through_readings_is_unknown(client: TestClient,
                                                       registry: DeviceRegistry) -> None:
    registry.seen({("street-12", "pi-air"): T0_MS})
    device = client.get("/api/v1/devices").json()["devices"][0]
    assert device == {"site": "street-12", "device": "pi-air", "state": "unknown",
                      "last_seen": format_ts(T0_MS), "location": None, "meta": None}


def test_devices_filtered_by_site(client: TestClient, registry: DeviceRegistry) -> None:
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS)
    announce(registry, "street-12", "pi-air", "online", T0_MS)
    body = client.get("/api/v1/devices", params={"site": "street-12"}).json()
    assert [(d["site"], d["device"]) for d in body["devices"]] == [("street-12", "pi-air")]


def test_devices_reject_invalid_site_name(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/devices", params={"site": "Fablab BCN"}), "site")
    assert "[a-z0-9][a-z0-9_-]{0,63}" in message
    assert "Fablab BCN" in message


def test_devices_reject_repeated_parameter(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/devices?site=a&site=b"), "site")
    assert "more than once" in message
