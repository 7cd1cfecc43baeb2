import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.api.routes.page import WEB_DIR, tile_source
from hub.config import DEFAULT_TILES, OpenDataConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage

#: Our own files (the vendored libraries are checked by their own tests below).
OWN_FILES = sorted(p for p in WEB_DIR.rglob("*") if p.is_file() and "vendor" not in p.parts)
SCRIPTS = sorted(WEB_DIR.glob("js/*.js"))


@pytest.fixture
def page_client(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    open_data = getattr(request, "param", OpenDataConfig())
    storage = SqliteStorage(tmp_path / "hub.db", synchronous="normal")
    registry = DeviceRegistry(tmp_path / "registry.db")
    with TestClient(create_app(HubContext(storage=storage, registry=registry,
                                          open_data=open_data))) as c:
        yield c
    storage.close()
    registry.close()


def test_page_is_served_at_root_with_a_strict_content_policy(page_client: TestClient) -> None:
    response = page_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert 'src="static/js/app.js" type="module"' in response.text
    assert 'href="static/style.css"' in response.text
    assert 'href="static/favicon.svg"' in response.text
    assert 'href="docs"' in response.text and 'href="api/v1/latest"' in response.text


def test_default_tiles_are_openstreetmap_and_only_their_host_may_serve_images(
        page_client: TestClient) -> None:
    response = page_client.get("/")
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in policy
    assert f'name="fabcity-tiles" content="{DEFAULT_TILES}"' in response.text
    credit = 'name="fabcity-tiles-attribution" content="© OpenStreetMap contributors"'
    assert credit in response.text


@pytest.mark.parametrize("page_client", [OpenDataConfig(tiles="")], indirect=True)
def test_empty_tiles_setting_turns_tiles_off_and_allows_no_other_image_host(
        page_client: TestClient) -> None:
    response = page_client.get("/")
    assert "img-src 'self' data:;" in response.headers["content-security-policy"]
    assert 'name="fabcity-tiles" content=""' in response.text


@pytest.mark.parametrize("page_client", [OpenDataConfig(
    tiles="https://{s}.tiles.example.org/{z}/{x}/{y}.png?a=1&b=2",
    tiles_attribution='Tiles <b>"example"</b>')], indirect=True)
def test_tile_settings_are_escaped_into_the_page(page_client: TestClient) -> None:
    response = page_client.get("/")
    assert "https://*.tiles.example.org" in response.headers["content-security-policy"]
    assert 'content="https://{s}.tiles.example.org/{z}/{x}/{y}.png?a=1&amp;b=2"' in response.text
    assert 'content="Tiles &lt;b&gt;&quot;example&quot;&lt;/b&gt;"' in response.text


@pytest.mark.parametrize("tiles", [
    "javascript:alert(1)", "https://tiles.example.org/tile.png",
    'https://x.org/{z}/{x}/{y}.png"><script>', "ftp://x.org/{z}/{x}/{y}.png"])
def test_tile_setting_must_be_an_http_template_with_z_x_y(tiles: str) -> None:
    with pytest.raises(ValueError, match=r"\{z\}, \{x\} and \{y\}"):
        OpenDataConfig(tiles=tiles)


def test_tile_source_is_scheme_and_host() -> None:
    assert tile_source("http://127.0.0.1:8080/t/{z}/{x}/{y}.png") == "http://127.0.0.1:8080"
    assert tile_source("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    assert tile_source("") is None


def test_page_assets_are_served(page_client: TestClient) -> None:
    for script in SCRIPTS:
        js = page_client.get(f"/static/js/{script.name}")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"], script
    app = page_client.get("/static/js/app.js").text
    assert "api/v1/sites" in app and "api/v1/aqi" in app
    css = page_client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    icon = page_client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
    for path in ("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css",
                 "vendor/leaflet/LICENSE", "vendor/uplot/uPlot.iife.min.js",
                 "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE"):
        assert page_client.get(f"/static/{path}").status_code == 200, path


def test_page_and_libraries_travel_gzipped(page_client: TestClient) -> None:
    response = page_client.get("/static/vendor/leaflet/leaflet.js",
                               headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    raw = (WEB_DIR / "vendor/leaflet/leaflet.js").read_bytes()
    assert len(gzip.compress(raw)) < len(raw) / 2
    assert response.content == raw  # the client decoded it: same bytes


def test_vendored_libraries_keep_their_licences_and_versions() -> None:
    readme = (WEB_DIR / "vendor/README.md").read_text()
    assert "| `leaflet` | 1.9.4 |" in readme and "| `uplot` | 1.6.32 |" in readme
    assert "Leaflet 1.9.4" in (WEB_DIR / "vendor/leaflet/leaflet.js").read_text()[:200]
    assert "BSD" in (WEB_DIR / "vendor/leaflet/LICENSE").read_text() or \
        "Redistribution" in (WEB_DIR / "vendor/leaflet/LICENSE").read_text()
    assert "MIT" in (WEB_DIR / "vendor/uplot/LICENSE").read_text()


@pytest.mark.parametrize("path", OWN_FILES, ids=lambda p: str(p.relative_to(WEB_DIR)))
def test_page_loads_nothing_from_other_hosts(path: Path) -> None:
    text = path.read_text()
    text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a namespace, not a load
    assert re.search(r"https?://|(src|href)=\"//", text) is None


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_page_script_never_parses_strings_as_html(path: Path) -> None:
    script = path.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "DOMParser", "createContextualFragment"):
        assert sink not in script


def test_page_files_ship_in_the_package_data() -> None:
    text = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    assert '"dashboards*"' in text
    patterns = re.search(r'^dashboards = \[(.*)\]$', text, re.M)
    assert patterns is not None
    depth = max(len(p.relative_to(WEB_DIR).parts) for p in WEB_DIR.rglob("*") if p.is_file())
    assert f'"web/{"/".join(["*"] * depth)}"' in patterns.group(1)


def test_api_docs_need_no_internet(page_client: TestClient) -> None:
    response = page_client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
    if "cdn." in response.text:
        pytest.skip("fastapi-offline not installed: /docs loads Swagger UI from a CDN")
    for asset in re.findall(r'(?:src|href)="([^"]+)"', response.text):
        assert page_client.get(f"/{asset}").status_code == 200, asset


def test_openapi_lists_every_endpoint(page_client: TestClient) -> None:
    paths = set(page_client.get("/openapi.json").json()["paths"])
    assert {"/api/v1/health", "/api/v1/sites", "/api/v1/devices", "/api/v1/latest",
            "/api/v1/readings", "/metrics"} <= paths


def test_credit_link_setting_is_escaped_into_the_page(page_client: TestClient) -> None:
    response = page_client.get("/")
    assert ('name="fabcity-tiles-attribution-url" '
            'content="https://www.openstreetmap.org/copyright"') in response.text


def test_air_quality_refresh_period_is_a_checked_parameter_written_on_the_html_element(
        page_client: TestClient) -> None:
    assert '<html lang="en">' in page_client.get("/").text
    assert '<html lang="en" data-aqi-refresh-s="5">' in page_client.get("/?aqi_refresh_s=5").text
    for bad in ("0", "3601", "soon"):
        response = page_client.get(f"/?aqi_refresh_s={bad}")
        assert response.status_code == 422, bad
        assert "aqi_refresh_s" in response.text
    assert page_client.get("/?aqi_refresh=5").status_code == 422  # a typo is not ignored
