"""ETag / If-None-Match, Cache-Control, licence headers and CORS."""

import pytest
from fastapi.testclient import TestClient

from fabcity.reading import format_ts, now_ms
from hub.api import create_app
from hub.config import SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import Storage
from tests.hub.api.conftest import T0_MS, announce, reading

CLOSED = {"start": format_ts(T0_MS), "end": format_ts(T0_MS + 3_600_000)}


def _revalidates(client: TestClient, url: str, **params: str) -> str:
    """Assert GET gives an ETag and the same GET with If-None-Match answers 304; return it."""
    first = client.get(url, params=params)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    again = client.get(url, params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    return etag


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_closed_range_readings_are_public_cacheable_and_revalidate(
        client: TestClient, storage: Storage, fmt: str) -> None:
    storage.write([reading("co2", 400.0, T0_MS)])
    response = client.get("/api/v1/readings", params={**CLOSED, "format": fmt})
    assert response.headers["cache-control"] == "public, max-age=86400"
    etag = _revalidates(client, "/api/v1/readings", **CLOSED, format=fmt)
    storage.write([reading("co2", 410.0, T0_MS + 60_000)])  # an edge replays its buffer
    late = client.get("/api/v1/readings", params={**CLOSED, "format": fmt},
                      headers={"If-None-Match": etag})
    assert late.status_code == 200 and late.headers["etag"] != etag


def test_live_readings_are_no_cache(client: TestClient, storage: Storage) -> None:
    storage.write([reading("co2", 400.0, now_ms() - 1000)])
    assert client.get("/api/v1/readings").headers["cache-control"] == "no-cache"
    end_past_but_relative = client.get("/api/v1/readings", params={"end": "-1m"})
    assert end_past_but_relative.headers["cache-control"] == "no-cache"


def test_recently_closed_range_is_cached_briefly(client: TestClient) -> None:
    now = now_ms()
    response = client.get("/api/v1/readings", params={"start": format_ts(now - 7_200_000),
                                                      "end": format_ts(now - 3_600_000)})
    assert response.headers["cache-control"] == "public, max-age=60"


def test_latest_revalidates_until_a_new_reading(client: TestClient, storage: Storage) -> None:
    storage.write([reading("co2", 400.0, T0_MS)])
    etag = _revalidates(client, "/api/v1/latest")
    storage.write([reading("co2", 401.0, T0_MS + 1000)])
    assert client.get("/api/v1/latest", headers={"If-None-Match": etag}).status_code == 200
    assert client.get("/api/v1/latest").headers["cache-control"] == "no-cache"


def test_sites_and_devices_revalidate(client: TestClient, registry: DeviceRegistry) -> None:
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS)
    for url in ("/api/v1/sites", "/api/v1/sites/fablab-bcn", "/api/v1/devices"):
        etag = _revalidates(client, url)
        assert client.get(url).headers["cache-control"] == "no-cache"
        assert client.get(url, headers={"If-None-Match": f'W/{etag}, "other"'}).status_code \
            == 304
    etag = client.get("/api/v1/devices").headers["etag"]
    announce(registry, "fablab-bcn", "pi-laser", "offline", T0_MS + 1)
    assert client.get("/api/v1/devices", headers={"If-None-Match": etag}).status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/health", "/metrics"])
def test_health_and_metrics_are_never_stored(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers


def test_every_answer_names_the_licence_with_a_link(client: TestClient) -> None:
    for url in ("/api/v1/sites", "/api/v1/devices", "/api/v1/latest", "/api/v1/readings",
                "/api/v1/health", "/api/v1/readings?limit=0"):
        response = client.get(url)
        assert response.headers["x-data-licence"] == "CC-BY-4.0", url
        assert client.get(url).links["license"]["url"] == \
            "https://creativecommons.org/licenses/by/4.0/"


def test_readings_and_latest_name_the_licence_of_each_site_present(
        ctx: HubContext, storage: Storage) -> None:
    ctx.sites = [SiteConfig(id="fablab-bcn", name="Fab Lab", licence="ODbL-1.0"),
                 SiteConfig(id="street-12", name="Street", licence="LicenseRef-city")]
    storage.write([reading("co2", 400.0, T0_MS),
                   reading("co2", 420.0, T0_MS, site="street-12", device="pi-air")])
    client = TestClient(create_app(ctx))
    for url, params in (("/api/v1/readings", CLOSED), ("/api/v1/latest", {})):
        response = client.get(url, params=params)
        assert response.json()["licence"] == {"fablab-bcn": "ODbL-1.0",
                                              "street-12": "LicenseRef-city"}
        assert response.json()["attribution"] == "fabcity contributors"
        assert response.headers["x-data-licence"] == "ODbL-1.0, LicenseRef-city"
        assert [v["url"] for k, v in response.links.items() if k == "license"] == [
            "https://opendatacommons.org/licenses/odbl/1-0/"]
    one = client.get("/api/v1/latest", params={"site": "street-12"})
    assert one.headers["x-data-licence"] == "LicenseRef-city" and "link" not in one.headers
    assert client.get("/api/v1/sites/fablab-bcn").headers["x-data-licence"] == "ODbL-1.0"


def test_cors_allows_any_origin_to_get(client: TestClient) -> None:
    response = client.get("/api/v1/latest", headers={"Origin": "https://map.example.org"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_cors_preflight_for_post_is_refused(client: TestClient) -> None:
    response = client.options("/api/v1/latest", headers={
        "Origin": "https://map.example.org", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 400
    assert "POST" not in response.headers.get("access-control-allow-methods", "")
