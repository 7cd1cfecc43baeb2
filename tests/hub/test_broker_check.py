"""The start-up broker check against real Mosquittos: a broker with Debian's packaged
settings (default queue and in-flight window) gets a warning naming the lines to add, the
project's own settings pass, and ingest stores readings published meanwhile while nothing of
the probe is stored or counted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import encode_batch
from fabcity.reading import Reading, now_ms
from hub.api.app import create_app
from hub.broker_check import PROBE_MESSAGES, BrokerCheck
from hub.config import load_hub_settings
from hub.service import HubService
from hub.storage.base import ReadingQuery
from tests.servers import Mosquitto, free_port

READINGS = 300


class DebianMosquitto(Mosquitto):
    """Mosquitto with Debian's packaged mosquitto.conf (persistence on, every other setting
    Mosquitto's default) on a free port; ``persistence=False``: Mosquitto's bare defaults."""

    def __init__(self, workdir: Path, persistence: bool = True) -> None:
        self.persistence = persistence
        super().__init__(workdir)

    def _write_conf(self) -> None:
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "user root"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {data}/"]
        self.conf.write_text("\n".join(lines) + "\n")


def _wait(predicate: Callable[[], object], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _service(tmp_path: Path, url: str, extra: str = "") -> HubService:
    config = tmp_path / "hub.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[mqtt]\nurl = "{url}"\n{extra}'
                      f'[storage]\npath = "{tmp_path / "hub.db"}"\n'
                      f"[api]\nport = {free_port()}\n")
    return HubService(load_hub_settings(config))


def _checked(service: HubService) -> BrokerCheck:
    assert service.broker_probe is not None
    _wait(lambda: service.broker_probe and service.broker_probe.result.status != "pending")
    return service.broker_probe.result


@pytest.fixture
def debian(tmp_path: Path) -> Iterator[DebianMosquitto]:
    broker = DebianMosquitto(tmp_path / "debian").start()
    yield broker
    broker.stop()


def test_debian_defaults_get_a_warning_naming_the_queue_and_inflight_lines(
    debian: DebianMosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "hub.broker_check")
    service = _service(tmp_path, debian.url)
    service.start()
    try:
        check = _checked(service)
        health = TestClient(create_app(service.context)).get("/api/v1/health").json()
    finally:
        service.stop()
    assert check.status == "warning"
    assert check.sent == PROBE_MESSAGES and check.queued == 1000  # Mosquitto's default
    assert check.receive_maximum == 20
    for line in ("max_queued_messages 0", "max_queued_bytes 0", "max_inflight_messages 1000"):
        assert line in check.config_lines
        assert line in caplog.text
    warnings = [r for r in caplog.records if r.name == "hub.broker_check"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "queued only 1000 of 1100 messages for an offline client" in warnings[0].message
    assert health["mqtt"]["connected"] is True
    assert health["mqtt"]["broker_check"]["status"] == "warning"
    assert "max_queued_messages 0" in health["mqtt"]["broker_check"]["config_lines"]


def _publish_readings(broker: Mosquitto, service: HubService, count: int) -> None:
    """Publish as soon as ingest is up, so the readings cross the probe's burst."""
    _wait(lambda: service.ingest and service.ingest.connected)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-1")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    start = now_ms() - 60_000
    infos = [client.publish("fabcity/v1/lab/pi-1/readings", encode_batch(i, [
        Reading("lab", "pi-1", "air", "temperature", float(i), start + i, "C")]), qos=1)
        for i in range(count)]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_the_projects_broker_config_passes_and_ingest_is_untouched_by_the_probe(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "hub.broker_check")
    service = _service(tmp_path, mosquitto.url)
    publisher = threading.Thread(target=_publish_readings, args=(mosquitto, service, READINGS))
    service.start()
    publisher.start()
    try:
        check = _checked(service)
        publisher.join(30)
        everything = ReadingQuery(0, now_ms() + 60_000)
        _wait(lambda: len(service.storage.raw(everything)) >= READINGS)
        time.sleep(0.5)  # anything of the probe that would be stored has arrived by now
        stored = service.storage.raw(everything)
        rejected = sum(sample.value for metric in service.metrics.rejected.collect()
                       for sample in metric.samples if sample.name.endswith("_total"))
        health = TestClient(create_app(service.context)).get("/api/v1/health").json()
    finally:
        service.stop()
    assert check.status == "ok", check.problems
    assert check.queued == check.sent == PROBE_MESSAGES
    assert check.receive_maximum == 1000 and check.session_kept
    assert check.broker and check.broker.startswith("mosquitto version")
    assert not [r for r in caplog.records
                if r.name == "hub.broker_check" and r.levelno >= logging.WARNING]
    assert "broker check" in caplog.text and "persistence true" in caplog.text
    assert len(stored) == READINGS
    assert {(r.site, r.device, r.metric) for r in stored} == {("lab", "pi-1", "temperature")}
    assert rejected == 0
    assert health["mqtt"]["broker_check"]["status"] == "ok"
    assert health["mqtt"]["broker_check"]["queued"] == PROBE_MESSAGES


def test_probe_false_and_the_embedded_broker_run_no_check(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    (tmp_path / "off").mkdir()
    service = _service(tmp_path / "off", mosquitto.url, "probe = false\n")
    service.start()
    health = TestClient(create_app(service.context)).get("/api/v1/health").json()
    service.stop()
    assert service.broker_probe is None and health["mqtt"]["broker_check"] is None

    config = tmp_path / "embedded.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[mqtt]\nembedded_port = 0\n'
                      f'[storage]\npath = "{tmp_path / "e.db"}"\n')
    embedded = HubService(load_hub_settings(config))
    embedded.start()
    embedded.stop()
    assert embedded.broker_probe is None


def test_a_broker_restart_that_kept_the_hubs_session_is_reported(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    service = _service(tmp_path, mosquitto.url)
    service.start()
    try:
        _checked(service)
        mosquitto.restart()
        assert service.broker_probe is not None
        _wait(lambda: service.broker_probe and service.broker_probe.result.persistence)
        result = service.broker_probe.result
    finally:
        service.stop()
    assert result.persistence == "kept" and result.status == "ok"


def test_a_broker_restart_without_persistence_is_a_warning_naming_persistence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = DebianMosquitto(tmp_path / "bare", persistence=False).start()
    service = _service(tmp_path, broker.url)
    service.start()
    try:
        _checked(service)
        broker.restart()
        assert service.broker_probe is not None
        _wait(lambda: service.broker_probe and service.broker_probe.result.persistence)
        result = service.broker_probe.result
    finally:
        service.stop()
        broker.stop()
    assert result.persistence == "lost" and result.status == "warning"
    assert "persistence true" in result.config_lines
    assert "lost the hub's session" in caplog.text
