"""Bytes the citizen page transfers on its first load (target: under 300 KB), in Chromium.

Starts a hub (uvicorn, SQLite with two declared sites, three devices and a day of readings) on a
free port, loads ``/`` in headless Chromium with the cache disabled, waits until the map shows
its markers and the page has settled, and sums what the DevTools Network events say went over
the wire (``Network.loadingFinished`` ``encodedDataLength``: headers plus gzip-encoded bodies),
per request. Map tiles are off (``tiles = ""``): they come from the tile server, not the hub,
and depend on the view; the figure is the hub's share of the page.

Run: ``.venv/bin/python benchmarks/page_weight.py [--settle 3]``.
"""

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn

from fabcity import __version__
from fabcity.reading import Reading, now_ms
from hub.api import create_app
from hub.config import OpenDataConfig, SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.cdp import CHROMIUM, Browser
from tests.hub.api.conftest import announce

TARGET_BYTES = 300 * 1024


def _conditions() -> str:
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    return (f"cpus={os.cpu_count()} load={os.getloadavg()} python={platform.python_version()} "
            f"fabcity={__version__} uvicorn={uvicorn.__version__} "
            f"chromium={version.strip().split(' built')[0]}")


def _hub(folder: Path) -> tuple[uvicorn.Server, threading.Thread, str]:
    storage = SqliteStorage(folder / "hub.db", synchronous="normal")
    registry = DeviceRegistry(folder / "registry.db")
    now = now_ms()
    announce(registry, "fablab-bcn", "pi-laser", "online", now, kind="machine", name="Laser")
    announce(registry, "street-12", "pi-air", "online", now, name="Air pole")
    announce(registry, "street-12", "pi-noise", "online", now, name="Noise")
    rows = []
    for m in range(24 * 60, 0, -1):
        ts = now - m * 60_000
        rows += [Reading("street-12", "pi-air", "sds011", "pm2_5", 10 + m % 17, ts, "ug/m3"),
                 Reading("street-12", "pi-air", "sds011", "pm10", 20 + m % 23, ts, "ug/m3"),
                 Reading("street-12", "pi-noise", "mic", "noise", 50 + m % 19, ts, "dBA"),
                 Reading("fablab-bcn", "pi-laser", "clamp", "power", m % 900, ts, "W")]
    storage.write(rows)
    sites = [SiteConfig(id="fablab-bcn", name="Fab Lab Barcelona", lat=41.3969, lon=2.1945),
             SiteConfig(id="street-12", name="Carrer de Pujades 12", lat=41.4006, lon=2.2010)]
    ctx = HubContext(storage=storage, registry=registry, sites=sites,
                     open_data=OpenDataConfig(tiles=""))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}/"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to keep listening after the markers appear")
    args = parser.parse_args()
    print(_conditions())
    with tempfile.TemporaryDirectory() as tmp:
        server, thread, url = _hub(Path(tmp))
        browser = Browser(1280, 800)
        try:
            browser.send("Network.setCacheDisabled", cacheDisabled=True)
            browser.events.clear()
            started = time.monotonic()
            browser.goto(url)
            browser.wait_for("document.querySelectorAll('.map-marker').length >= 2")
            shown_s = time.monotonic() - started
            browser.pump(args.settle)
        finally:
            browser.close()
            server.should_exit = True
            thread.join(10)
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in browser.events if e["method"] == "Network.requestWillBeSent"}
    done = [(urls.get(e["params"]["requestId"], "?"), int(e["params"]["encodedDataLength"]))
            for e in browser.events if e["method"] == "Network.loadingFinished"]
    total = sum(size for _, size in done)
    for request_url, size in sorted(done, key=lambda d: -d[1]):
        print(f"{size:>9,} B  {request_url.removeprefix(url)}")
    print(f"{len(done)} requests, {total:,} bytes transferred ({total / 1024:.1f} KiB); "
          f"markers shown after {shown_s:.2f} s; target < {TARGET_BYTES // 1024} KiB: "
          f"{'met' if total < TARGET_BYTES else 'MISSED'}")
    return 0 if total < TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
