"""The citizen dashboard in a real headless Chromium, served by a real uvicorn.

Checks what a person would see: markers on the map, charts, a value changing live, a device
page, no script error or Content-Security-Policy violation; saves screenshots at desktop and
phone widths (their folder is printed; run with ``-s`` to see it).
"""

import functools
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
from hub.api.routes import stream as stream_route
from hub.config import OpenDataConfig, SiteConfig
from hub.context import HubContext
from hub.live import LiveBroadcaster
from hub.live_replay import replay
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.cdp import Browser, chromium_available
from tests.hub.api.conftest import announce, reading

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium")

HOSTILE_NAME = 'Laser <img src=x onerror="document.title=1">'
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
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


def _machine_history(now: int) -> list[Reading]:
    """A CNC router from an hour before yesterday (UTC) until now, every 5 minutes: yesterday it
    ran 09:00-13:00 and 15:00-17:00 (6 h, 2 starts); today it stays idle."""
    yesterday = now // DAY_MS * DAY_MS - DAY_MS
    out = []
    for ts in range(yesterday - HOUR_MS, now, 300_000):
        hour = (ts - yesterday) / HOUR_MS
        running = 0 <= hour < 24 and (9 <= hour < 13 or 15 <= hour < 17)
        out.append(reading("state", 1.0 if running else 0.0, ts, device="pi-cnc", sensor="spindle"))
        out.append(reading("power", 1200.0 if running else 10.0, ts, device="pi-cnc",
                           sensor="spindle", unit="W"))
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
    announce(registry, "fablab-bcn", "pi-cnc", "online", now, kind="machine", name="CNC router")
    storage.write(_history(now) + _machine_history(now))
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


@pytest.fixture(scope="module")
def shots() -> Path:
    """``artifacts/page/`` at the repository root (ignored by git), replaced on every run."""
    folder = ARTIFACTS / "page"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {folder}")
    return folder


_LASER_POWER = ("document.querySelector('dd[data-device=\"pi-laser\"][data-metric=\"power\"]"
                " .num')")


def _laser_power(browser: Browser) -> str:
    return str(browser.evaluate(f"{_LASER_POWER}?.textContent || ''"))


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
    # The tile credit links to the data's copyright page (built as an element, not HTML).
    assert browser.evaluate("[document.querySelector('.leaflet-control-attribution a')?.href,"
                            " document.querySelector('.leaflet-control-attribution').textContent]"
                            ) == ["https://www.openstreetmap.org/copyright",
                                  "© OpenStreetMap contributors"]
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


def _dot(browser: Browser, label_start: str) -> str:
    """The fill colour of the map marker whose label starts with ``label_start``."""
    return str(browser.evaluate(
        "[...document.querySelectorAll('.map-marker')].find(m => m.getAttribute('aria-label')"
        f".startsWith({label_start!r}))?.querySelector('.dot').dataset.colour || ''"))


def test_machines_section_shows_daily_hours_and_the_state_live(
        hub: Hub, browser: Browser, shots: Path) -> None:
    browser.goto(hub.url + "#/site/fablab-bcn")
    machine = "article.machine[data-device=\"pi-cnc\"][data-sensor=\"spindle\"]"
    browser.wait_for(f"!!document.querySelector('{machine} tbody tr')")
    rows = browser.evaluate(f"[...document.querySelectorAll('{machine} tbody tr')]"
                            ".map(tr => [...tr.cells].map(c => c.textContent.trim()))")
    assert len(rows) == 7  # the last 7 UTC days, today last
    assert rows[-1][0] == "Today"
    yesterday = rows[-2]
    assert yesterday[2:] == ["6.0", "18.0", "2"], yesterday  # running h, idle h, starts
    assert float(yesterday[1]) > 7  # 6 h at 1.2 kW and 18 h at 10 W
    assert rows[-4][2] == "\N{EN DASH}unknown", rows  # no data that day: unknown, not zero
    assert browser.evaluate(f"document.querySelector('{machine} h3').textContent") == \
        "CNC router (spindle)"
    # Table semantics: a caption and header cells with scopes.
    assert "Daily use of CNC router" in browser.evaluate(
        f"document.querySelector('{machine} caption').textContent")
    assert browser.evaluate(f"document.querySelectorAll('{machine} th[scope=col]').length") == 5
    csv = browser.evaluate("document.querySelector('.machines-section a[download]').href")
    assert "api/v1/machines?site=fablab-bcn" in csv and "format=csv" in csv
    assert "Licence: CC-BY-4.0" in browser.evaluate(
        "document.querySelector('.machines-section').textContent")
    # Today's state follows the stream.
    badge = f"document.querySelector('{machine} .machine-now .badge').textContent"
    assert browser.evaluate(badge) == "idle"
    hub.deliver([reading("state", 1.0, now_ms(), device="pi-cnc", sensor="spindle")])
    browser.wait_for(f"{badge} === 'running'", timeout_s=25)
    browser.evaluate("document.querySelector('.machines-section').scrollIntoView()")
    browser.screenshot(shots / "machines-desktop.png", full_page=False)
    # On a phone the table fits the screen.
    browser.resize(390, 844, mobile=True)
    browser.pump(0.5)
    wide = browser.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > 391).map(e => e.tagName + '.' + e.className).slice(0, 5)")
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390, wide
    browser.evaluate("document.querySelector('.machines-section').scrollIntoView()")
    browser.screenshot(shots / "machines-phone.png", full_page=False)
    assert browser.exceptions() == []


def test_markers_and_chips_change_colour_when_the_air_quality_band_changes(
        hub: Hub, browser: Browser) -> None:
    browser.goto(hub.url + "?aqi_refresh_s=1#/")
    before = browser.wait_for(""
                              "[...document.querySelectorAll('.map-marker .dot')]"
                              ".map(d => d.dataset.colour).join(',')")
    assert _dot(browser, "Air pole") != "#8f3f97"
    # A second sensor on the air pole reads 180 ug/m3 for 13 hours: PM2.5 "very unhealthy".
    now = now_ms()
    hub.ctx.storage.write([reading("pm2_5", 180.0, ts, site="street-12", device="pi-air",
                                   sensor="pms5003", unit="ug/m3")
                           for ts in range(now - 13 * HOUR_MS, now, 600_000)])
    browser.wait_for("[...document.querySelectorAll('.map-marker')]"
                     ".find(m => m.getAttribute('aria-label').startsWith('Air pole'))"
                     ".querySelector('.dot').dataset.colour === '#8f3f97'", timeout_s=20)
    assert "Very Unhealthy" in browser.evaluate(
        "[...document.querySelectorAll('.map-marker')].find(m => m.getAttribute('aria-label')"
        ".startsWith('Air pole')).getAttribute('aria-label')")
    assert _dot(browser, "Carrer de Pujades 12") == "#8f3f97"  # the site: its worst device
    assert browser.evaluate("document.querySelector('.site-card[data-site=\"street-12\"] .chip')"
                            ".dataset.category") == "very_unhealthy"
    assert before  # the markers had colours before the change
    assert browser.exceptions() == []


def test_chart_grows_when_a_reading_arrives_live(hub: Hub, browser: Browser) -> None:
    browser.goto(hub.url + "#/device/street-12/pi-air")
    plot = "document.querySelector('figure.chart[data-metric=\"pm2_5\"] .plot')"
    points = int(browser.wait_for(f"{plot}?.dataset.points"))
    browser.wait_for("document.getElementById('status').textContent.startsWith('Live')")
    # The newest stored reading is 5 minutes old: one now opens a new 5-minute bucket.
    hub.deliver([reading("pm2_5", 30.0, now_ms(), site="street-12", device="pi-air",
                         sensor="sds011", unit="ug/m3")])
    browser.wait_for(f"Number({plot}.dataset.points) === {points + 1}", timeout_s=25)
    # A second reading in the same bucket updates it instead of adding one.
    hub.deliver([reading("pm2_5", 50.0, now_ms() + 1, site="street-12", device="pi-air",
                         sensor="sds011", unit="ug/m3")])
    browser.wait_for("document.querySelector('figure.chart[data-metric=\"pm2_5\"] .chart-now')"
                     ".textContent.includes('40.0')", timeout_s=25)
    assert int(browser.evaluate(f"{plot}.dataset.points")) == points + 1
    assert browser.exceptions() == []


def test_a_dropped_stream_resumes_and_a_gap_reloads_the_charts(
        hub: Hub, browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that falls behind is dropped, resumes with Last-Event-ID, and is told about
    what the bounded replay left out: the page says so and still shows the newest value."""
    hub.ctx.live = LiveBroadcaster(queue_max=3, retry_ms=200)
    monkeypatch.setattr(stream_route, "replay", functools.partial(replay, max_readings=3))
    browser.goto(hub.url + "#/site/fablab-bcn")
    browser.wait_for("document.getElementById('status')?.textContent.startsWith('Live')")
    now = now_ms()
    hub.deliver([reading("power", 1111.0, now, sensor="clamp", unit="W")])
    browser.wait_for(f"{_LASER_POWER}?.textContent.replace(/\\D/g, '') === '1111'",
                     timeout_s=25)
    # Ten readings in one batch: more than the client's queue holds, so it is dropped; on
    # resume the replay returns only the last three and announces the seven it left out.
    hub.deliver([reading("power", 2000.0 + i, now + 1 + i, sensor="clamp", unit="W")
                 for i in range(9)] + [reading("power", 7777.0, now + 10, sensor="clamp",
                                               unit="W")])
    status = browser.wait_for("document.getElementById('status').textContent.includes("
                              "'were missed live') && document.getElementById('status')"
                              ".textContent", timeout_s=25)
    assert "charts reloaded" in status
    browser.wait_for(f"{_LASER_POWER}?.textContent.replace(/\\D/g, '') === '7777'",
                     timeout_s=25)
    # The resumed stream is live again.
    hub.deliver([reading("power", 4242.0, now + 20, sensor="clamp", unit="W")])
    browser.wait_for(f"{_LASER_POWER}?.textContent.replace(/\\D/g, '') === '4242'",
                     timeout_s=25)
    assert browser.exceptions() == []
