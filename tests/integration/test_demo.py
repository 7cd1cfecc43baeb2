"""``fabcity demo`` runs the whole system and stops cleanly on Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.integration.conftest import wait_until
from tests.servers import ROOT, free_port


def _get(port: int, path: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's exit status waits for init, which may not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_demo_serves_live_readings_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "fabcity", "demo", "--port", str(port), "--data-dir",
         str(tmp_path / "data"), "--interval", "0.2"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        def all_online() -> bool:
            try:
                devices = _get(port, "/api/v1/devices")["devices"]
            except OSError:
                return False
            return len(devices) == 4 and all(d["state"] == "online" for d in devices)

        wait_until(all_online, timeout_s=30, what="four simulated devices online")
        # A week of history is there from the start: one reading a minute, hourly here.
        week = _get(port, "/api/v1/readings?site=street-pujades&device=pole-01&metric=pm2_5"
                          "&start=-7d&every=1h")["readings"]
        assert len(week) >= 7 * 24
        assert max(r["value"] for r in week) >= 35.5  # the pollution episode
        energy = [r["value"] for r in _get(
            port, "/api/v1/readings?device=pi-laser&sensor=laser&metric=energy&start=-7d"
                  "&every=1h&agg=last")["readings"]]
        assert len(energy) >= 7 * 24 and energy == sorted(energy)
        names = {s["site"]: s["name"] for s in _get(port, "/api/v1/sites")["sites"]}
        assert names["fablab-poblenou"] == "Fab Lab Poblenou"
        wait_until(lambda: {r["site"] for r in _get(port, "/api/v1/latest")["readings"]}
                   == {"fablab-poblenou", "street-pujades"}, what="readings from both sites")
        metrics = {r["metric"] for r in _get(port, "/api/v1/latest")["readings"]}
        assert {"pm2_5", "co2", "power", "energy", "state"} <= metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            assert b"fabcity" in resp.read()
        edge_pids = [int(line.split()[0]) for line in subprocess.run(
            ["pgrep", "-af", str(tmp_path / "data")], capture_output=True, text=True
        ).stdout.splitlines() if "edge run" in line]
        assert len(edge_pids) == 4

        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert f"http://127.0.0.1:{port}" in output
    assert "7 days before now ready" in output
    assert "fabcity demo stopped." in output
    assert "Traceback" not in output
    assert not [pid for pid in edge_pids if _alive(pid)], "edge agents left running"


def test_demo_agents_stop_when_the_demo_is_killed(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    demo = subprocess.Popen(
        [sys.executable, "-m", "fabcity", "demo", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)

    def edge_pids() -> list[int]:
        out = subprocess.run(["pgrep", "-f", f"edge run --config {data}"], capture_output=True,
                             text=True).stdout
        return [int(pid) for pid in out.split()]

    try:
        wait_until(lambda: len(edge_pids()) == 4, timeout_s=30, what="four edge agents")
        pids = edge_pids()
        demo.kill()  # SIGKILL: the demo cannot stop its children itself
        demo.wait(10)
        wait_until(lambda: not [pid for pid in pids if _alive(pid)], timeout_s=15,
                   what="the orphaned edge agents to stop by themselves")
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in edge_pids():
            os.kill(pid, signal.SIGKILL)
