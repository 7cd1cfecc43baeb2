"""The citizen dashboard in a real headless Chromium, served by a real uvicorn.

Checks what a person would see: markers on the map, charts, a value changing live, a device
page, no script error or Content-Security-Policy violation; saves screenshots at desktop and
phone widths (their folder is printed; run with ``-s`` to see it).
"""

import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from fabcity.reading import Reading, now_ms
from hub.api import create_app
from hub.config import OpenDataConfig, SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.cdp import Browser, chromium_available
from tests.hub.api.conftest import announce, reading

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium")

HOSTILE_NAME = 'Laser <img src=x onerror="document.title=1">'
HOUR_MS = 3_600_000
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
SITES = [
    SiteConfig(id="fablab-bcn", name="Fab Lab Barcelona", kind="fablab", lat=41.3969,
               lon=2.1945, description="Makers' workshop in Poblenou.", licence="CC-BY-4.0"),
    SiteConfig(id="street-12", name="Carrer de Pujades 12", kind="street", lat=41.4006,
               lon=2.2010, licence="ODbL-1.0"),
]


@dataclass
class Hub:
    url: str
    ctx: HubContext

    def deliver(self, readings: list[Reading]) -> None:
        """Store readings as ingest does, and hand them to the live stream if the hub has one."""
        self.ctx.storage.write(readings)
        live = getattr(self.ctx, "live", None)
        if live is not None:
            live.publish(readings)


def _history(now: int) -> list[Reading]:
    """Seven days of hourly PM2.5 crossing bands, a day of 5-minute values, power, CO2."""
    out = []
    for h in range(7 * 24, 24, -1):
        pm = 20 + 18 * math.sin(h / 9)
        out.append(reading("pm2_5", round(pm, 1), now - h * HOUR_MS, site="street-12",
                           device="pi-air", sensor="sds011", unit="ug/m3"))
    for m in range(24 * 12, 0, -1):
        ts = now - m * 300_000
        out.append(reading("pm2_5", round(12 + 10 * math.sin(m / 20), 1), ts, site="street-12",
                           device="pi-air", sensor="sds011", unit="ug/m3"))
        out.append(reading("co2", 600 + 3 * (m % 150), ts, sensor="scd30", unit="ppm"))
        out.append(reading("power", 800.0 if m % 24 < 12 else 5.0, ts, sensor="clamp", unit="W"))
    return out


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    storage = SqliteStorage(tmp_path / "hub.db", synchronous="normal")
    registry = DeviceRegistry(tmp_path / "registry.db")
    now = now_ms()
    announce(registry, "fablab-bcn", "pi-laser", "online", now, kind="machine",
             name=HOSTILE_NAME)
    announce(registry, "street-12", "pi-air", "online", now, kind="environment",
             name="Air pole", location={"lat": 41.4012, "lon": 2.2021})
    announce(registry, "street-12", "pi-noise", "offline", now - 3 * HOUR_MS)
    storage.write(_history(now))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Tiles from this hub's own (missing) path: the page must shrug off tiles that fail.
    open_data = OpenDataConfig(tiles=f"http://127.0.0.1:{port}/no-tiles/{{z}}/{{x}}/{{y}}.png")
    ctx = HubContext(storage=storage, registry=registry, sites=SITES, open_data=open_data)
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield Hub(f"http://127.0.0.1:{port}/", ctx)
    server.should_exit = True
    thread.join(10)
    sock.close()
    storage.close()
    registry.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser(1280, 800)
    yield b
    b.close()


@pytest.fixture
def shots() -> Path:
    """``artifacts/page/`` at the repository root (ignored by git), replaced on every run."""
    folder = ARTIFACTS / "page"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {folder}")
    return folder


def _laser_power(browser: Browser) -> str:
    return str(browser.evaluate(
        "document.querySelector('dd[data-device=\"pi-laser\"][data-metric=\"power\"] .num')"
        "?.textContent || ''"))


def test_dashboard_shows_map_charts_live_values_and_device_pages(
        hub: Hub, browser: Browser, shots: Path) -> None:
    browser.goto(hub.url)
    # The map: one marker per site and one for the device placed away from its site.
    markers = browser.wait_for(
        "document.querySelectorAll('.map-marker').length >= 3 && "
        "[...document.querySelectorAll('.map-marker')].map(m => m.getAttribute('aria-label'))")
    assert any(m.startswith("Fab Lab Barcelona") for m in markers)
    assert any(m.startswith("Air pole at Carrer de Pujades 12") for m in markers)
    assert browser.evaluate("[...document.querySelectorAll('.leaflet-tooltip.site-label')]"
                            ".map(t => t.textContent).sort().join('|')") == \
        "Carrer de Pujades 12|Fab Lab Barcelona"
    # Markers are reachable by keyboard.
    assert browser.evaluate("[...document.querySelectorAll('.map-marker')]"
                            ".every(m => m.tabIndex === 0)")
    assert browser.evaluate("document.querySelector('.site-list').textContent")
    browser.pump(1.0)
    browser.screenshot(shots / "overview-desktop.png")
    # Enter on a focused marker opens its site.
    browser.evaluate("[...document.querySelectorAll('.map-marker')].find(m => m.getAttribute("
                     "'aria-label').startsWith('Fab Lab')).focus()")
    for kind in ("keyDown", "keyUp"):
        browser.send("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                     windowsVirtualKeyCode=13)
    browser.wait_for("location.hash === '#/site/fablab-bcn'")

    # A site page: its devices with values, and charts.
    browser.goto(hub.url + "#/site/fablab-bcn")
    browser.wait_for("document.querySelectorAll('figure.chart canvas').length >= 2")
    assert _laser_power(browser) == "5" or _laser_power(browser) == "800"
    laser = browser.evaluate("document.querySelector('article.device[data-device=\"pi-laser\"]')"
                             ".outerHTML")
    assert "Laser &lt;img src=x onerror=\"document.title=1\"&gt;" in laser
    assert browser.evaluate("document.querySelectorAll('img[src=x]').length") == 0

    # Live: a reading stored now replaces the value in place, without a reload.
    hub.deliver([reading("power", 4321.0, now_ms(), sensor="clamp", unit="W")])
    browser.wait_for("document.querySelector('dd[data-device=\"pi-laser\"][data-metric=\"power\"]"
                     " .num')?.textContent.replace(/\\D/g, '') === '4321'", timeout_s=25)
    browser.screenshot(shots / "site-desktop.png")

    # A device page: PM2.5 chart with its band named in words, licence and CSV link.
    browser.goto(hub.url + "#/device/street-12/pi-air")
    browser.wait_for("!!document.querySelector('figure.chart[data-metric=\"pm2_5\"] canvas')")
    chart = browser.wait_for("document.querySelector('figure.chart[data-metric=\"pm2_5\"] "
                             ".chart-now .chip')?.textContent")
    assert chart in {"Good", "Moderate", "Unhealthy for sensitive groups"}
    caption = browser.evaluate("document.querySelector('figure.chart figcaption').textContent")
    assert "Licence: ODbL-1.0" in caption and "Download CSV" in caption
    csv_link = browser.evaluate("document.querySelector('figure.chart figcaption a').href")
    assert "format=csv" in csv_link and "every=5m" in csv_link and "device=pi-air" in csv_link
    # The 7-day view asks for hourly means.
    browser.evaluate("document.querySelector('input[name=range][value=\"7d\"]').click()")
    browser.wait_for("!!document.querySelector('figure.chart[data-range=\"7d\"] canvas')")
    assert "every=1h" in browser.evaluate(
        "document.querySelector('figure.chart[data-range=\"7d\"] figcaption a').href")
    browser.pump(0.5)
    browser.screenshot(shots / "device-desktop.png")

    # The back button returns to the site page (hash routes).
    browser.evaluate("history.back()")
    browser.wait_for("location.hash === '#/site/fablab-bcn' && "
                     "!!document.querySelector('article.device[data-device=\"pi-laser\"]')")

    # Phone width: one column, nothing wider than the screen.
    browser.resize(390, 844, mobile=True)
    for name, route in (("overview", ""), ("device", "#/device/street-12/pi-air")):
        browser.goto(hub.url + route)
        browser.wait_for("!!document.querySelector('.page-heading')")
        browser.pump(1.0)
        wide = browser.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > 391).map(e => e.tagName + '.' + e.className).slice(0, 5)")
        assert browser.evaluate("document.documentElement.scrollWidth") <= 390, wide
        browser.screenshot(shots / f"{name}-phone.png")

    # The dark scheme.
    browser.resize(1280, 800)
    browser.send("Emulation.setEmulatedMedia",
                 features=[{"name": "prefers-color-scheme", "value": "dark"}])
    browser.goto(hub.url + "#/site/street-12")
    browser.wait_for("!!document.querySelector('figure.chart canvas')")
    assert browser.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 20, 25)"
    browser.pump(0.5)
    browser.screenshot(shots / "site-dark.png")

    assert browser.exceptions() == []
