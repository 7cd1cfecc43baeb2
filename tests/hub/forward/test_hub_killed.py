"""A hub SIGKILLed while a request to openSenseMap is in flight: after a restart nothing is
lost, and nothing is sent twice but that one request."""

import json
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from fabcity.reading import Reading, now_ms
from hub.storage.sqlite import SqliteStorage
from tests.hub.forward.fakes import Scripted, opensensemap, serve
from tests.hub.forward.test_opensensemap import BOX, PM10, PM25, TOKEN
from tests.servers import FabcityProcess, free_port

pytestmark = pytest.mark.integration

BATCH = 500


def _config(tmp_path: Path, url: str, api_port: int) -> Path:
    config = tmp_path / "hub.toml"
    config.write_text(f"""state_dir = "{tmp_path}"
[mqtt]
embedded_port = 0
[storage]
path = "{tmp_path / 'hub.db'}"
[api]
port = {api_port}
[[forward]]
to = "opensensemap"
devices = ["street/pole-01"]
url = "{url}"
box_id = "{BOX}"
token = "{TOKEN}"
sensors = {{ "sds/pm2_5" = "{PM25}", "sds/pm10" = "{PM10}" }}
batch_max = {BATCH}
backfill_s = 172800
interval_s = 1
settle_s = 0
""")
    return config


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as resp:
        answer: dict[str, object] = json.load(resp)
        return answer


def test_after_a_sigkill_mid_request_only_that_request_is_sent_again(tmp_path: Path) -> None:
    start = now_ms() - 86_400_000 - 3_600_000
    day = [Reading("street", "pole-01", "sds", metric, float(i % 97), start + i * 60_000)
           for i in range(1440) for metric in ("pm2_5", "pm10")]
    storage = SqliteStorage(tmp_path / "hub.db")
    storage.write(day)
    storage.close()
    release = threading.Event()
    with serve(opensensemap(BOX, TOKEN, {PM25, PM10})) as api:
        api.script = [Scripted(201, body="Measurements saved in box"),
                      Scripted(201, body="Measurements saved in box"),
                      Scripted(201, hold=release)]  # the third request never gets its answer
        api_port = free_port()
        config = _config(tmp_path, api.url, api_port)
        hub = FabcityProcess(["hub", "serve", "-c", str(config)], tmp_path / "hub1.log").start()
        try:
            api.wait_for(3, timeout_s=60)
        finally:
            hub.kill()  # SIGKILL while the third request waits for its answer
            release.set()
        in_flight = {(m["sensor"], m["createdAt"]) for m in api.requests[2].body}

        restarted = FabcityProcess(["hub", "serve", "-c", str(config)],
                                   tmp_path / "hub2.log").start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sent = Counter((m["sensor"], m["createdAt"]) for q in api.requests
                               for m in q.body)
                if len(sent) == len(day):
                    break
                time.sleep(0.2)
            time.sleep(1.5)  # a pass or more: nothing more may come
            health = _health(api_port)
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics") as resp:
                metrics = resp.read().decode()
        finally:
            restarted.terminate()
    sent = Counter((m["sensor"], m["createdAt"]) for q in api.requests for m in q.body)
    assert len(sent) == len(day), hub.output() + restarted.output()  # nothing lost
    doubled = {key for key, times in sent.items() if times > 1}
    assert doubled == in_flight  # the one unanswered request, and nothing else
    assert max(sent.values()) == 2
    forwarders = health["forwarders"]
    assert isinstance(forwarders, list) and len(forwarders) == 1
    forwarder = forwarders[0]
    assert forwarder["lag_s"] == 0 and forwarder["status"] == "ok"
    # the restarted hub counts what it sent itself: the day minus the two answered batches
    name = f"opensensemap-{BOX}"
    assert f'fabcity_forwarded_readings_total{{forwarder="{name}"}} {len(day) - 2 * BATCH}.0' \
        in metrics
