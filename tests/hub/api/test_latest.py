from fastapi.testclient import TestClient

from fabcity.reading import format_ts, now_ms, parse_ts
from hub.storage.base import Storage
from tests.hub.api.conftest import T0_MS, reading, rejected


def _fill(storage: Storage) -> None:
    storage.write([
        reading("pm2_5", 10.0, T0_MS, site="street-12", device="pi-air"),
        reading("pm2_5", 12.5, T0_MS + 1_000, site="street-12", device="pi-air"),
        reading("temperature", 21.0, T0_MS, site="street-12", device="pi-air"),
        reading("power", 800.0, T0_MS, sensor="power"),
    ])


def test_latest_is_newest_reading_of_each_series_with_unit(client: TestClient,
                                                           storage: Storage) -> None:
    _fill(storage)
    body = client.get("/api/v1/latest").json()
    assert body["count"] == 3
    rows = {(r["site"], r["device"], r["sensor"], r["metric"]): (r["value"], r["unit"], r["ts"])
            for r in body["readings"]}
    assert rows == {
        ("fablab-bcn", "pi-laser", "power", "power"): (800.0, "W", format_ts(T0_MS)),
        ("street-12", "pi-air", "air", "pm2_5"): (12.5, "ug/m3", format_ts(T0_MS + 1_000)),
        ("street-12", "pi-air", "air", "temperature"): (21.0, "degC", format_ts(T0_MS)),
    }
    assert abs(parse_ts(body["now"]) - now_ms()) < 60_000


def test_latest_filters_by_site_device_and_metric(client: TestClient,
                                                  storage: Storage) -> None:
    _fill(storage)

    def metrics(**params: str) -> list[str]:
        return [r["metric"] for r in client.get("/api/v1/latest", params=params).json()["readings"]]

    assert metrics(site="fablab-bcn") == ["power"]
    assert metrics(device="pi-air") == ["pm2_5", "temperature"]
    assert metrics(site="street-12", metric="temperature") == ["temperature"]
    assert metrics(site="nowhere") == []


def test_latest_rejects_invalid_metric_name(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/latest", params={"metric": "PM2.5"}), "metric")
    assert "[a-z][a-z0-9_]{0,63}" in message


def test_latest_rejects_invalid_device_name(client: TestClient) -> None:
    rejected(client.get("/api/v1/latest", params={"device": "-pi"}), "device")


def test_latest_names_a_misspelt_parameter_and_the_expected_ones(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/latest", params={"metrc": "pm2_5"}), "metrc")
    assert "device, metric, site" in message


def test_latest_answers_503_when_storage_is_unavailable(client: TestClient,
                                                        storage: Storage) -> None:
    storage.close()
    response = client.get("/api/v1/latest")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["detail"].startswith("storage unavailable")
