"""Three ``fabcity hub ingest`` workers share the readings through an MQTT v5 shared
subscription on a real Mosquitto; one is killed with SIGKILL mid-stream and restarted with
its worker id: every reading is stored once, none lost."""

import json
import sqlite3
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.reading import format_ts, now_ms
from tests.servers import FabcityProcess, Mosquitto, free_port

WORKERS = 3
MESSAGES = 600
PER_MESSAGE = 5
KILL_AFTER = 200  # messages published before the SIGKILL


def _config(tmp_path: Path, broker: Mosquitto, metrics_port: int | None = None) -> Path:
    config = tmp_path / "hub.toml"
    metrics = f"[ingest]\nmetrics_port = {metrics_port}\n" if metrics_port else ""
    config.write_text(f'[mqtt]\nurl = "{broker.url}"\nshared_group = "hubs"\nprobe = false\n'
                      f'[storage]\nbackend = "sqlite"\npath = "{tmp_path / "hub.db"}"\n'
                      + metrics)
    return config


def _stored_by(port: int) -> float:
    """Readings a worker stored (new or replayed), from its own metrics port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return sum(float(line.split()[1]) for line in resp.read().decode().splitlines()
                   if line.startswith(("fabcity_readings_stored_total ",
                                       "fabcity_readings_duplicate_total ")))


def _stored(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM points").fetchone()[0])
        except sqlite3.OperationalError:  # no table yet
            return 0


def _wait_for_log(worker: FabcityProcess, text: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in worker.output():
        assert time.monotonic() < deadline, f"no {text!r} in {worker.log}:\n{worker.output()}"
        time.sleep(0.05)


def _worker(config: Path, tmp_path: Path, index: int, run: int) -> FabcityProcess:
    return FabcityProcess(["hub", "ingest", "-c", str(config), "--worker-id", str(index)],
                          tmp_path / f"worker{index}-{run}.log").start()


def test_a_killed_worker_resumes_its_session_and_nothing_is_lost_or_doubled(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    metrics_port = free_port()  # worker N serves its metrics on metrics_port + N
    config = _config(tmp_path, mosquitto, metrics_port)
    workers = [_worker(config, tmp_path, i, 1) for i in range(WORKERS)]
    restarted: FabcityProcess | None = None
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-workers",
                            protocol=paho.MQTTv5)
    try:
        for worker in workers:
            _wait_for_log(worker, "new session")
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        start = now_ms() - 60_000
        for seq in range(MESSAGES):
            readings = [{"sensor": "bench", "metric": "temperature", "value": seq,
                         "unit": "°C", "ts": format_ts(start + seq * PER_MESSAGE + i)}
                        for i in range(PER_MESSAGE)]
            publisher.publish("fabcity/v1/lab/pi/readings",
                              json.dumps({"seq": seq, "readings": readings}), qos=1)
            if seq == KILL_AFTER:
                workers[1].kill()  # SIGKILL: its unacked messages stay in its session
            time.sleep(0.002)
        settled, previous = _stored(tmp_path / "hub.db"), -1
        while settled != previous:  # the two live workers have stored their share
            time.sleep(1)
            previous, settled = settled, _stored(tmp_path / "hub.db")
        # Mosquitto keeps the dead worker's in-flight messages in its session and goes on
        # handing it its turn of the group's new messages until it returns.
        held = MESSAGES * PER_MESSAGE - settled
        assert held > 0
        restarted = FabcityProcess(
            ["hub", "ingest", "-c", str(config), "--worker-id", "1"],
            tmp_path / "worker1-2.log").start()
        _wait_for_log(restarted, "resumed session")
        deadline = time.monotonic() + 30
        while _stored(tmp_path / "hub.db") < MESSAGES * PER_MESSAGE:
            assert time.monotonic() < deadline, f"{_stored(tmp_path / 'hub.db')} stored"
            time.sleep(0.1)
        time.sleep(0.5)  # anything doubled would have to be stored by now
        with sqlite3.connect(tmp_path / "hub.db") as conn:
            total, distinct = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT ts_ms) FROM points").fetchone()
        assert total == distinct == MESSAGES * PER_MESSAGE
        # what the broker held for the killed worker went to it, not to the others
        assert _stored_by(metrics_port + 1) >= held
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        for worker in [*workers, restarted]:
            if worker is not None:
                worker.terminate()


def _publish(broker: Mosquitto, first: int, count: int) -> None:
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-retire",
                            protocol=paho.MQTTv5)
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    start = now_ms() - 60_000
    infos = [publisher.publish("fabcity/v1/lab/pi/readings", json.dumps({"seq": seq, "readings": [
        {"sensor": "bench", "metric": "temperature", "value": seq, "unit": "°C",
         "ts": format_ts(start + seq)}]}), qos=1) for seq in range(first, first + count)]
    for info in infos:
        info.wait_for_publish(30)
    publisher.loop_stop()
    publisher.disconnect()


def _wait_stored(db: Path, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _stored(db) < count:
        assert time.monotonic() < deadline, f"{_stored(db)} of {count} stored"
        time.sleep(0.1)


def test_a_stopped_worker_keeps_its_turn_until_it_is_retired(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = _config(tmp_path, mosquitto)
    db = tmp_path / "hub.db"
    workers = [_worker(config, tmp_path, i, 1) for i in range(2)]
    try:
        for worker in workers:
            _wait_for_log(worker, "new session")
        assert workers[1].terminate() == 0  # a clean stop: the session stays, and its turn
        _publish(mosquitto, 0, 100)
        time.sleep(1)
        assert _stored(db) < 100  # the stopped worker's turn waits in its session
        retire = FabcityProcess(["hub", "ingest", "-c", str(config), "--worker-id", "1",
                                 "--retire"], tmp_path / "retire.log").start()
        assert retire.proc is not None
        assert retire.proc.wait(120) == 0, retire.output()
        assert _stored(db) == 100  # what its session held is stored
        _publish(mosquitto, 100, 100)
        _wait_stored(db, 200)  # the one worker left gets every reading now
    finally:
        for worker in workers:
            worker.terminate()
