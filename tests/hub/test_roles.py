"""``fabcity hub ingest`` and ``fabcity hub api`` apart: what each imports, what each refuses,
and an API in two worker processes serving what an ingest process stores."""

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.cli import main
from fabcity.reading import format_ts, now_ms
from tests.hub.sse import Reader
from tests.servers import FabcityProcess, Mosquitto, free_port, wait_for_port


def test_ingest_role_never_imports_the_web_stack(tmp_path: Path) -> None:
    code = ("import sys; from fabcity.cli import build_parser; "
            "build_parser(['hub', 'ingest']); import hub.service, hub.live_feed; "
            "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_help_says_what_each_role_runs(capsys: pytest.CaptureFixture[str]) -> None:
    for role, words in (("ingest", ["--worker-id", "shared_group", "No HTTP API"]),
                        ("api", ["--workers", "without ingest"])):
        with pytest.raises(SystemExit):
            main(["hub", role, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert all(word in out for word in words), out


@pytest.mark.parametrize(("argv", "toml", "message"), [
    (["hub", "ingest"], "", "mqtt.url: fabcity hub ingest needs an external broker"),
    (["hub", "api"], "", "mqtt.url: fabcity hub api needs an external broker"),
    (["hub", "serve"], "[api]\nworkers = 2\n", "api.workers: 2 API processes need the roles"),
    (["hub", "ingest", "--worker-id", "a b"], "", "--worker-id: worker id 'a b' must match"),
])
def test_roles_refuse_what_they_cannot_run(
    argv: list[str], toml: str, message: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(toml + f'[storage]\npath = "{tmp_path / "hub.db"}"\n')
    assert main([*argv, "-c", str(config)]) == 2
    assert message in capsys.readouterr().err


def _publish(broker: Mosquitto, device: str, values: range) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pi-{device}")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    base = f"fabcity/v1/lab/{device}"
    infos = [
        client.publish(f"{base}/status", json.dumps({"state": "online"}), qos=1, retain=True),
        client.publish(f"{base}/meta", json.dumps({
            "site": "lab", "device": device, "kind": "environment",
            "sensors": [{"name": "t", "driver": "x", "metrics": {"temperature": "°C"}}]}),
            qos=1, retain=True)]
    start = now_ms() - 10_000
    infos += [client.publish(f"{base}/readings", json.dumps({"seq": v, "readings": [
        {"sensor": "t", "metric": "temperature", "value": v, "unit": "°C",
         "ts": format_ts(start + v)}]}), qos=1) for v in values]
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def test_api_workers_serve_what_ingest_workers_store(mosquitto: Mosquitto,
                                                     tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(f'[mqtt]\nurl = "{mosquitto.url}"\nshared_group = "hubs"\nprobe = false\n'
                      f'[storage]\npath = "{tmp_path / "hub.db"}"\n'
                      f"[api]\nport = {port}\nworkers = 2\n")
    processes = [FabcityProcess(["hub", "ingest", "-c", str(config), "--worker-id", str(i)],
                                tmp_path / f"ingest{i}.log").start() for i in range(2)]
    processes.append(FabcityProcess(["hub", "api", "-c", str(config)],
                                    tmp_path / "api.log").start())
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, 120)  # fresh interpreters: slow on a loaded machine
        deadline = time.monotonic() + 120
        while any(p.output().count("connected to mqtt") < 1 for p in processes) \
                or processes[2].output().count("live stream connected") < 2:
            assert time.monotonic() < deadline, [p.output() for p in processes]
            time.sleep(0.05)
        # four connections, spread over both API processes; each is subscribed once its
        # first frame (retry:) arrived, and only then are readings published
        readers = [Reader(f"{url}/api/v1/stream?device=pi-1").start() for _ in range(4)]
        deadline = time.monotonic() + 60
        while not all(reader.raw for reader in readers):
            assert time.monotonic() < deadline, "a live stream never answered"
            time.sleep(0.05)
        _publish(mosquitto, "pi-1", range(20))
        for reader in readers:  # every API process's live stream has every reading
            events = reader.wait_for(20, timeout_s=30)
            assert sorted(e.json()["value"] for e in events) == list(range(20))
            reader.close()
        deadline = time.monotonic() + 20
        while True:
            devices = httpx.get(f"{url}/api/v1/devices").json()["devices"]
            readings = httpx.get(f"{url}/api/v1/readings", params={
                "device": "pi-1", "start": "-1h", "limit": 100}).json()
            if devices and devices[0]["meta"] and len(readings["readings"]) == 20:
                break
            assert time.monotonic() < deadline, (devices, readings)
            time.sleep(0.2)
        assert devices[0]["state"] == "online"
        assert devices[0]["meta"]["sensors"][0]["name"] == "t"
    finally:
        for process in processes:
            assert process.terminate() == 0, process.output()


def test_serve_sharing_the_readings_streams_every_reading_live(mosquitto: Mosquitto,
                                                                tmp_path: Path) -> None:
    """``serve`` with a shared group gets only its share through ingest: its live stream
    comes from a subscription of its own."""
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(f'[mqtt]\nurl = "{mosquitto.url}"\nshared_group = "hubs"\nprobe = false\n'
                      f'[storage]\npath = "{tmp_path / "hub.db"}"\n[api]\nport = {port}\n')
    processes = [FabcityProcess(["hub", "serve", "-c", str(config)], tmp_path / "serve.log"),
                 FabcityProcess(["hub", "ingest", "-c", str(config), "--worker-id", "1"],
                                tmp_path / "ingest1.log")]
    for process in processes:
        process.start()
    try:
        wait_for_port(port, 120)
        deadline = time.monotonic() + 120
        while "live stream connected" not in processes[0].output() \
                or "new session" not in processes[1].output():
            assert time.monotonic() < deadline, [p.output() for p in processes]
            time.sleep(0.05)
        reader = Reader(f"http://127.0.0.1:{port}/api/v1/stream?device=pi-2").start()
        while not reader.raw:
            assert time.monotonic() < deadline, "the live stream never answered"
            time.sleep(0.05)
        _publish(mosquitto, "pi-2", range(20))
        events = reader.wait_for(20, timeout_s=30)
        assert sorted(e.json()["value"] for e in events) == list(range(20))
        reader.close()
        assert "ingest as MQTT client fabcity-hub-1, readings shared in group hubs" in (
            processes[1].output())
    finally:
        for process in processes:
            assert process.terminate() == 0, process.output()
