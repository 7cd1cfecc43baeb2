from fastapi.testclient import TestClient

from hub.context import HubContext
from tests.hub.api.conftest import Link


def test_metrics_expose_hub_counters_in_prometheus_format(client: TestClient,
                                                          ctx: HubContext) -> None:
    ctx.metrics.readings_stored.inc(42)
    ctx.metrics.rejected.labels(reason="bad_json").inc(3)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    lines = response.text.splitlines()
    assert "fabcity_readings_stored_total 42.0" in lines
    assert 'fabcity_rejected_total{reason="bad_json"} 3.0' in lines
    assert any(line.startswith("fabcity_storage_write_seconds_bucket") for line in lines)


def test_metrics_report_broker_link(client: TestClient, link: Link) -> None:
    assert "fabcity_mqtt_connected 1.0" in client.get("/metrics").text.splitlines()
    link.up = False
    assert "fabcity_mqtt_connected 0.0" in client.get("/metrics").text.splitlines()
