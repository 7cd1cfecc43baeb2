"""The running hub (real Mosquitto, real files) when its SQLite file is deleted under it."""

import shutil
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import encode_batch
from fabcity.reading import Reading, now_ms
from hub.api.app import create_app
from hub.config import load_hub_settings
from hub.service import HubService
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto, free_port


def _publish(broker: Mosquitto, seq: int, value: float) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-1")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    reading = Reading("lab", "pi-1", "clamp", "power", value, now_ms() - 1_000 + seq, "W")
    client.publish("fabcity/v1/lab/pi-1/readings", encode_batch(seq, [reading]),
                   qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _until(check: object, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_a_deleted_database_is_reported_nothing_is_acked_and_the_rescue_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.ingest

    monkeypatch.setattr(hub.ingest, "RETRY_MIN_S", 0.05)
    db = tmp_path / "hub.db"
    config = tmp_path / "hub.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[mqtt]\nurl = "{mosquitto.url}"\n'
                      f'[storage]\npath = "{db}"\n[api]\nport = {free_port()}\n')
    service = HubService(load_hub_settings(config))
    service.start()
    try:
        _until(lambda: service.ingest is not None and service.ingest.connected)
        _publish(mosquitto, 1, 1.0)
        _until(lambda: bool(service.storage.latest()))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)

        _publish(mosquitto, 2, 2.0)
        assert service.ingest is not None
        _until(lambda: service.ingest.storage_problem is not None)  # type: ignore[union-attr]
        health = TestClient(create_app(service.context)).get("/api/v1/health").json()
        assert health["status"] == "degraded"
        assert "hub.db was deleted" in health["storage"]["status"]
        assert health["storage"]["since"] is not None
        assert not db.exists()

        # The operator's rescue, as the error tells it: copy the open file back, restart.
        cause = service.ingest.storage_problem[0]  # type: ignore[index]
        proc = cause.split("Copy the open database out of ")[1].split()[0]
        shutil.copyfile(proc, db)
    finally:
        service.stop()

    healthy = HubService(load_hub_settings(config))
    healthy.start()  # the broker kept reading 2 for the session: it arrives now
    try:
        _until(lambda: len(healthy.storage.latest()) == 1
               and healthy.storage.latest()[0].value == 2.0)
    finally:
        healthy.stop()
    store = SqliteStorage(db)
    try:
        assert store.count() == 2
    finally:
        store.close()
