"""Provisioned devices against a real Mosquitto started with the files the hub renders: each
device speaks only for itself, revoked and unknown clients are refused, TLS is required on the
TLS port and only a client that trusts the CA gets in."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.buffer import Buffer
from edge.config import MqttConfig, PublishConfig
from edge.publisher import Publisher
from fabcity.codec import encode_batch
from fabcity.link import check_broker
from fabcity.mqtt import BrokerAddress
from fabcity.reading import Reading, now_ms
from hub.broker_files import check_mosquitto_hash, mosquitto_hash
from hub.config import BrokerFilesConfig, HubMqttConfig, HubSettings, IngestConfig
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.provisioning import IssuedCredential, Provisioner
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery
from hub.storage.sqlite import SqliteStorage
from tests.hub.secure_broker import ScratchCa, SecureMosquitto, deploy_setting, make_test_ca

HUB_PASSWORD = "hub-secret"


def _wait(predicate: Callable[[], object], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Deployment:
    """A hub's provisioner and the broker reading its files."""

    def __init__(self, tmp: Path, ca: ScratchCa) -> None:
        self.settings = HubSettings(
            state_dir=tmp / "state",
            mqtt=HubMqttConfig(url="mqtt://127.0.0.1:1883", username="hub",
                               password=HUB_PASSWORD),
            broker=BrokerFilesConfig(password_file=tmp / "fabcity.passwd",
                                     acl_file=tmp / "fabcity.acl"))
        self.provisioner = Provisioner(self.settings)
        self.devices = {name: self.provisioner.add(*name.split("/"))
                        for name in ("lab/pi-a", "lab/pi-b", "city/pi-a")}
        assert self.settings.broker.password_file and self.settings.broker.acl_file
        self.broker = SecureMosquitto(tmp, self.settings.broker.password_file,
                                      self.settings.broker.acl_file, ca).start()
        self.settings.broker.reload_command = self.broker.reload_command

    def plain(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.broker.port, False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ScratchCa:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def deployment(tmp_path: Path, ca: ScratchCa) -> Iterator[Deployment]:
    d = Deployment(tmp_path, ca)
    yield d
    d.broker.stop()
    d.provisioner.close()


def test_our_hash_is_mosquitto_passwd_format_and_checks_its_lines(tmp_path: Path) -> None:
    made = tmp_path / "made.passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(made), "tool", "pw-1"], check=True)
    theirs = made.read_text().strip().split(":", 1)[1]
    assert check_mosquitto_hash("pw-1", theirs) and not check_mosquitto_hash("pw-2", theirs)
    ours = mosquitto_hash("pw-1", iterations=101, salt=b"0123456789ab")
    assert ours.split("$")[:3] == theirs.split("$")[:3] == ["", "7", "101"]
    assert len(ours) == len(theirs) and check_mosquitto_hash("pw-1", ours)


def test_broker_accepts_our_lines_and_mosquitto_passwd_lines(deployment: Deployment) -> None:
    password_file = deployment.settings.broker.password_file
    assert password_file is not None
    subprocess.run(["mosquitto_passwd", "-b", str(password_file), "tool", "pw-1"], check=True)
    subprocess.run(deployment.broker.reload_command.split(), check=True)
    time.sleep(0.3)
    for user, password in [("tool", "pw-1"), ("hub", HUB_PASSWORD),
                           *[(c.username, c.password) for c in deployment.devices.values()]]:
        ok, message = check_broker(deployment.plain(), user, password, timeout_s=3)
        assert ok, (user, message)


def test_anonymous_and_wrong_passwords_are_refused(deployment: Deployment) -> None:
    address = deployment.plain()
    device = deployment.devices["lab/pi-a"]
    assert not check_broker(address, timeout_s=3)[0]
    assert not check_broker(address, device.username, "not-it", timeout_s=3)[0]
    # the same device name at another site has its own password
    other = deployment.devices["city/pi-a"]
    assert not check_broker(address, device.username, other.password, timeout_s=3)[0]


def test_revoked_device_cannot_connect_after_the_reload(deployment: Deployment) -> None:
    device = deployment.devices["lab/pi-b"]
    assert check_broker(deployment.plain(), device.username, device.password, timeout_s=3)[0]
    deployment.provisioner.revoke("lab", "pi-b")
    time.sleep(0.3)  # SIGHUP is handled between network loops
    ok, message = check_broker(deployment.plain(), device.username, device.password,
                               timeout_s=3)
    assert not ok and "password" in message
    assert device.username not in (deployment.settings.broker.acl_file or Path()).read_text()


def _connect(deployment: Deployment, device: IssuedCredential) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=device.username)
    client.username_pw_set(device.username, device.password)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect("127.0.0.1", deployment.broker.port)
    client.loop_start()
    assert connected.wait(5)
    return client


def test_device_cannot_publish_for_another_device(deployment: Deployment,
                                                  tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    mqtt = HubMqttConfig(url=f"mqtt://127.0.0.1:{deployment.broker.port}", client_id="hub",
                         username="hub", password=HUB_PASSWORD)
    ingest = Ingest(BrokerAddress("127.0.0.1", deployment.broker.port, False), mqtt,
                    IngestConfig(), storage, DeviceRegistry(tmp_path / "registry.db"),
                    HubMetrics(), protocol="v5")
    ingest.start()
    try:
        _wait(lambda: ingest.connected)
        time.sleep(0.3)  # subscribed
        client = _connect(deployment, deployment.devices["lab/pi-a"])
        base = now_ms() - 60_000
        # Forged first, own last: one connection keeps order, so once the own batch is
        # stored any forged one the broker let through would be stored already.
        for i, (site, device) in enumerate([("lab", "pi-b"), ("city", "pi-a"),
                                            ("lab", "pi-a")]):
            batch = encode_batch(i, [Reading(site, device, "air", "co2", 400 + i, base + i,
                                             "ppm")])
            topic = f"fabcity/v1/{site}/{device}/readings"
            client.publish(topic, batch, qos=1).wait_for_publish(5)
        query = ReadingQuery(metric="co2", start_ms=base - 1, end_ms=base + 10)
        _wait(lambda: storage.query(query))
        time.sleep(0.5)
        stored = {(r.site, r.device) for r in storage.query(query)}
        assert stored == {("lab", "pi-a")}
        assert deployment.broker.logged().count("Denied PUBLISH from lab.pi-a") == 2
        client.disconnect()
        client.loop_stop()
    finally:
        ingest.stop()
        storage.close()


def test_tls_port_needs_tls_and_a_trusted_ca(deployment: Deployment, ca: ScratchCa,
                                             tmp_path: Path) -> None:
    device = deployment.devices["lab/pi-a"]
    tls = BrokerAddress("127.0.0.1", deployment.broker.tls_port, True)
    ok, message = check_broker(tls, device.username, device.password, ca.ca, timeout_s=3)
    assert ok, message
    plain_on_tls = BrokerAddress("127.0.0.1", deployment.broker.tls_port, False)
    assert not check_broker(plain_on_tls, device.username, device.password, timeout_s=2)[0]
    stranger = make_test_ca(tmp_path / "other", name="other")
    ok, message = check_broker(tls, device.username, device.password, stranger.ca, timeout_s=3)
    assert not ok and "not trusted" in message and "ca_file" in message


@pytest.mark.skipif(deploy_setting("message_size_limit") is None,
                    reason="deploy/mosquitto/mosquitto.conf sets no message_size_limit yet")
def test_broker_refuses_a_message_over_the_size_limit(deployment: Deployment,
                                                      tmp_path: Path) -> None:
    limit = int(deploy_setting("message_size_limit") or 0)
    hub = paho.Client(CallbackAPIVersion.VERSION2, client_id="hub-sub")
    hub.username_pw_set("hub", HUB_PASSWORD)
    got: list[int] = []
    hub.on_message = lambda _c, _u, msg: got.append(len(msg.payload))
    hub.connect("127.0.0.1", deployment.broker.port)
    hub.subscribe("fabcity/v1/#", qos=1)
    hub.loop_start()
    time.sleep(0.3)
    client = _connect(deployment, deployment.devices["lab/pi-a"])
    for size in (limit + 1, limit):
        client.publish("fabcity/v1/lab/pi-a/readings", b"x" * size, qos=1)
    _wait(lambda: got)
    time.sleep(0.3)
    assert got == [limit]
    for c in (client, hub):
        c.disconnect()
        c.loop_stop()


def _agent(deployment: Deployment, device: IssuedCredential, buffer: Buffer) -> Publisher:
    site, name = device.username.split(".")
    mqtt = MqttConfig(url=f"mqtt://127.0.0.1:{deployment.broker.port}",
                      username=device.username, password=device.password)
    return Publisher(site, name, buffer, mqtt, PublishConfig(batch_size=50, linger_s=0))


def _readings(buffer: Buffer, site: str, device: str, count: int) -> None:
    base = now_ms() - 60_000
    buffer.put([Reading(site, device, "air", "co2", 400 + i, base + i, "ppm")
                for i in range(count)])


def test_confirmations_reach_only_their_own_device(deployment: Deployment,
                                                   tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    mqtt = HubMqttConfig(url=f"mqtt://127.0.0.1:{deployment.broker.port}", client_id="hub",
                         username="hub", password=HUB_PASSWORD)
    ingest = Ingest(BrokerAddress("127.0.0.1", deployment.broker.port, False), mqtt,
                    IngestConfig(), storage, DeviceRegistry(tmp_path / "registry.db"),
                    HubMetrics(), protocol="v5")
    ingest.start()
    spy = _connect(deployment, deployment.devices["lab/pi-b"])
    overheard: list[str] = []
    spy.on_message = lambda _c, _u, msg: overheard.append(msg.topic)
    spy.subscribe([("fabcity/v1/lab/pi-a/ack", 0), ("fabcity/v1/#", 0)])
    buffer = Buffer(tmp_path / "buffer.db")
    _readings(buffer, "lab", "pi-a", 120)
    agent = _agent(deployment, deployment.devices["lab/pi-a"], buffer)
    try:
        _wait(lambda: ingest.connected)
        agent.start()
        _wait(lambda: len(buffer) == 0)  # confirmed by the hub through the broker's ACL
        assert agent.confirming and agent.published == 120
        # another device may not forge a confirmation (its rows would be deleted unstored)
        spy.publish("fabcity/v1/lab/pi-a/ack", b'{"stored":[[1,1000]]}', qos=1)
        time.sleep(0.5)
        assert "Denied PUBLISH from lab.pi-b" in deployment.broker.logged()
        assert [t for t in overheard if t.endswith("/ack")] == []
    finally:
        agent.stop()
        spy.disconnect()
        spy.loop_stop()
        ingest.stop()
        storage.close()
        buffer.close()

