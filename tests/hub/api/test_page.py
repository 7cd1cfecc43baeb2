import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from fabcity.reading import now_ms
from hub.api import create_app
from hub.api.routes.page import WEB_DIR
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.hub.api.conftest import announce, reading

CHROMIUM = "/usr/bin/chromium"
HOSTILE_NAME = 'Laser <img src=x onerror="document.title=1">'


def test_page_is_served_at_root_with_a_strict_content_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert 'src="static/app.js"' in response.text
    assert 'href="static/style.css"' in response.text
    assert 'href="docs"' in response.text and 'href="api/v1/latest"' in response.text


def test_page_assets_are_served(client: TestClient) -> None:
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "api/v1/latest" in js.text and "api/v1/devices" in js.text
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("name", sorted(p.name for p in WEB_DIR.iterdir() if p.is_file()))
def test_page_loads_nothing_from_other_hosts(name: str) -> None:
    text = (WEB_DIR / name).read_text()
    assert re.search(r"https?://|(src|href)=\"//", text) is None


def test_page_script_never_parses_strings_as_html() -> None:
    script = (WEB_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


def test_api_docs_need_no_internet(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
    if "cdn." in response.text:
        pytest.skip("fastapi-offline not installed: /docs loads Swagger UI from a CDN")
    for asset in re.findall(r'(?:src|href)="([^"]+)"', response.text):
        assert client.get(f"/{asset}").status_code == 200, asset


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {"/api/v1/health", "/api/v1/sites", "/api/v1/devices", "/api/v1/latest",
            "/api/v1/readings", "/metrics"} <= paths


class _LiveStorage(SqliteStorage):
    """Stores a newer reading after the page's first poll, to prove the page refreshes."""

    polls = 0

    def latest(self, site=None, device=None, metric=None):  # type: ignore[no-untyped-def]
        self.polls += 1
        if self.polls == 2:
            self.write([reading("power", 4321.0, now_ms())])
        return super().latest(site, device, metric)


@pytest.fixture
def live_url(tmp_path: Path) -> Iterator[str]:
    """A real uvicorn serving the app on a free port, with two devices."""
    storage = _LiveStorage(tmp_path / "hub.db", synchronous="normal")
    registry = DeviceRegistry(tmp_path / "registry.db")
    now = now_ms()
    announce(registry, "fablab-bcn", "pi-laser", "online", now, kind="machine",
             name=HOSTILE_NAME)
    announce(registry, "street-12", "pi-air", "offline", now - 60_000)
    storage.write([reading("power", 812.0, now - 1_000),
                   reading("pm2_5", 12.5, now - 60_000, site="street-12", device="pi-air")])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(HubContext(storage=storage, registry=registry))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(10)
    sock.close()
    storage.close()
    registry.close()


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs the chromium Debian package")
def test_page_in_a_real_browser_shows_live_values_and_escapes_names(live_url: str) -> None:
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
         "--dump-dom", live_url],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    laser = dom.split('data-device="pi-laser"', 1)[1].split("</article>", 1)[0]
    assert 'class="badge online"' in laser
    # Polled again without a reload: the value stored after the first poll is shown.
    assert re.search(r'data-metric="power"[^>]*>4\D?321<span class="unit">W</span>', laser)
    air = dom.split('data-device="pi-air"', 1)[1].split("</article>", 1)[0]
    assert 'class="badge offline"' in air
    assert re.search(r'data-metric="pm2_5"[^>]*>12\.5<span class="unit">µg/m³</span>', air)
    # The hostile device name is text, not markup.
    assert "Laser &lt;img src=x onerror=\"document.title=1\"&gt;" in laser
    assert "<img" not in dom
