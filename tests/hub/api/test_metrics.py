import time

import paho.mqtt.client as paho
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import encode_batch
from fabcity.mqtt import parse_broker_url
from fabcity.reading import Reading, now_ms
from hub.config import HubMqttConfig, IngestConfig
from hub.context import HubContext
from hub.ingest import Ingest
from tests.hub.api.conftest import Link
from tests.servers import Mosquitto


def test_ingest_moves_the_counters_metrics_exposes(
        client: TestClient, ctx: HubContext, mosquitto: Mosquitto) -> None:
    ingest = Ingest(parse_broker_url(mosquitto.url),
                    HubMqttConfig(url=mosquitto.url, client_id="hub-metrics"), IngestConfig(),
                    ctx.storage, ctx.registry, ctx.metrics, protocol="v5")
    ingest.start()
    deadline = time.monotonic() + 10
    while not ingest.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    pub = paho.Client(CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    base = now_ms() - 10_000
    for i in range(7):
        batch = encode_batch(i, [Reading("lab", "pi-1", "air", "pm2_5", 10.0 + i, base + i)])
        pub.publish("fabcity/v1/lab/pi-1/readings", batch, qos=1).wait_for_publish(5)
    for _ in range(3):
        pub.publish("fabcity/v1/lab/pi-1/readings", b"{not json", qos=1).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    deadline = time.monotonic() + 10
    while "fabcity_readings_stored_total 7.0" not in client.get("/metrics").text:
        assert time.monotonic() < deadline, client.get("/metrics").text
        time.sleep(0.1)
    ingest.stop()
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    lines = response.text.splitlines()
    assert 'fabcity_rejected_total{reason="bad_json"} 3.0' in lines
    assert 'fabcity_messages_received_total{kind="readings"} 10.0' in lines
    assert any(line.startswith("fabcity_storage_write_seconds_bucket") for line in lines)


def test_metrics_report_broker_link(client: TestClient, link: Link) -> None:
    assert "fabcity_mqtt_connected 1.0" in client.get("/metrics").text.splitlines()
    link.up = False
    assert "fabcity_mqtt_connected 0.0" in client.get("/metrics").text.splitlines()
