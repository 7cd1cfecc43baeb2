"""The running hub, in-process against a real Mosquitto: how it ends when storage breaks."""

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import encode_batch
from fabcity.reading import Reading, now_ms
from hub.config import load_hub_settings
from hub.service import EXIT_STORAGE_FAILED, HubService
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto, free_port


class BuggyStorage(SqliteStorage):
    """A back-end with a bug: every write raises something no classification covers."""

    def write(self, readings: Sequence[Reading]) -> int:
        raise ZeroDivisionError("a bug in the back-end")


def _publish_when_up(broker: Mosquitto, service: HubService) -> None:
    deadline = time.monotonic() + 20
    while not (service.ingest and service.ingest.connected) and time.monotonic() < deadline:
        time.sleep(0.05)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-1")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    reading = Reading("lab", "pi-1", "clamp", "power", 10.0, now_ms() - 1_000, "W")
    client.publish("fabcity/v1/lab/pi-1/readings", encode_batch(1, [reading]),
                   qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_a_storage_bug_ends_the_hub_with_a_non_zero_status_and_nothing_acked(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.ingest
    import hub.service

    monkeypatch.setattr(hub.ingest, "RETRY_MIN_S", 0.01)
    monkeypatch.setattr(hub.service, "storage_class", lambda _name: BuggyStorage)
    config = tmp_path / "hub.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[mqtt]\nurl = "{mosquitto.url}"\n'
                      f'[storage]\npath = "{tmp_path / "hub.db"}"\n'
                      f"[api]\nport = {free_port()}\n")
    service = HubService(load_hub_settings(config))
    publisher = threading.Thread(target=_publish_when_up, args=(mosquitto, service))
    publisher.start()
    started = time.monotonic()
    service.serve()  # returns by itself: ingest gave up and told the API server to stop
    publisher.join()
    assert service.exit_code == EXIT_STORAGE_FAILED
    assert time.monotonic() - started < 30

    # Nothing was acked: the next hub (healthy storage, same session) gets the reading.
    monkeypatch.setattr(hub.service, "storage_class", lambda _name: SqliteStorage)
    healthy = HubService(load_hub_settings(config))
    healthy.start()
    deadline = time.monotonic() + 15
    while not healthy.storage.latest() and time.monotonic() < deadline:
        time.sleep(0.05)
    healthy.stop()
    assert [r.value for r in SqliteStorage(tmp_path / "hub.db").latest()] == [10.0]


def test_without_a_broker_url_the_embedded_one_takes_1883_when_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    import hub.service

    config = tmp_path / "hub.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[storage]\npath = "{tmp_path / "hub.db"}"\n')
    service = HubService(load_hub_settings(config))
    free = free_port()
    monkeypatch.setattr(hub.service, "MQTT_PORT", free)  # stands for 1883, free here
    assert service._embedded_port() == free
    with socket.socket() as taken:  # another broker holds "1883"
        taken.bind(("127.0.0.1", free))
        taken.listen()
        assert service._embedded_port() == 0
    assert f"port {free} is taken" in caplog.text
    service.settings.mqtt.embedded_port = 0  # the demo: any free port, always
    assert service._embedded_port() == 0
    service.stop()
