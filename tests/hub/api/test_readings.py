import csv
import io

import pytest
from fastapi.testclient import TestClient

from fabcity.reading import format_ts, now_ms, parse_ts
from hub.api.deps import MAX_LIMIT
from hub.storage.base import Storage
from tests.hub.api.conftest import T0_MS, reading, rejected

MIN_MS = 60_000
WINDOW = {"start": format_ts(T0_MS), "end": format_ts(T0_MS + 10 * MIN_MS)}


def _fill(storage: Storage) -> None:
    """pm2_5 of pi-air: 10, 20 in the first minute, 30, 50 in the second; one noise reading."""
    storage.write([
        reading("pm2_5", 10.0, T0_MS, site="street-12", device="pi-air"),
        reading("pm2_5", 20.0, T0_MS + 30_000, site="street-12", device="pi-air"),
        reading("pm2_5", 50.0, T0_MS + MIN_MS + 40_000, site="street-12", device="pi-air"),
        reading("pm2_5", 30.0, T0_MS + MIN_MS + 10_000, site="street-12", device="pi-air"),
        reading("noise", 55.0, T0_MS, site="street-12", device="pi-air", sensor="mic"),
    ])


def _values(response) -> list[tuple[str, str, float]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [(r["metric"], r["ts"], r["value"]) for r in response.json()["readings"]]


def test_raw_readings_in_window_ordered_by_series_then_time(client: TestClient,
                                                            storage: Storage) -> None:
    _fill(storage)
    body = client.get("/api/v1/readings", params=WINDOW).json()
    assert [(r["sensor"], r["metric"], r["value"]) for r in body["readings"]] == [
        ("air", "pm2_5", 10.0), ("air", "pm2_5", 20.0), ("air", "pm2_5", 30.0),
        ("air", "pm2_5", 50.0), ("mic", "noise", 55.0)]
    assert body["count"] == 5 and body["truncated"] is False
    assert body["readings"][0]["unit"] == "ug/m3" and body["readings"][4]["unit"] == "dBA"
    assert body["query"]["start"] == WINDOW["start"] and body["query"]["every"] is None


def test_start_is_inclusive_and_end_exclusive(client: TestClient, storage: Storage) -> None:
    _fill(storage)
    params = {"metric": "pm2_5", "start": format_ts(T0_MS + 30_000),
              "end": format_ts(T0_MS + MIN_MS + 40_000)}
    assert [v for _, _, v in _values(client.get("/api/v1/readings", params=params))] == [
        20.0, 30.0]


def test_filters_by_sensor_and_metric(client: TestClient, storage: Storage) -> None:
    _fill(storage)
    assert _values(client.get("/api/v1/readings", params={**WINDOW, "sensor": "mic"})) == [
        ("noise", format_ts(T0_MS), 55.0)]
    assert len(_values(client.get("/api/v1/readings", params={**WINDOW, "metric": "pm2_5"}))) == 4
    assert _values(client.get("/api/v1/readings", params={**WINDOW, "site": "fablab-bcn"})) == []


def test_default_range_is_the_last_24_hours(client: TestClient, storage: Storage) -> None:
    now = now_ms()
    storage.write([reading("co2", 400.0, now - 25 * 3_600_000),
                   reading("co2", 410.0, now - 3_600_000)])
    body = client.get("/api/v1/readings").json()
    assert [r["value"] for r in body["readings"]] == [410.0]
    span = parse_ts(body["query"]["end"]) - parse_ts(body["query"]["start"])
    assert span == 24 * 3_600_000


def test_relative_start(client: TestClient, storage: Storage) -> None:
    now = now_ms()
    storage.write([reading("co2", 400.0, now - 3 * 3_600_000),
                   reading("co2", 410.0, now - 30 * MIN_MS)])
    assert [v for *_, v in _values(client.get("/api/v1/readings?start=-2h"))] == [410.0]
    assert [v for *_, v in _values(client.get("/api/v1/readings?start=-4h&end=-1h"))] == [400.0]


@pytest.mark.parametrize(("agg", "expected"), [
    ("mean", [15.0, 40.0]), ("min", [10.0, 30.0]), ("max", [20.0, 50.0]), ("last", [20.0, 50.0]),
])
def test_downsampling_one_value_per_bucket(client: TestClient, storage: Storage,
                                           agg: str, expected: list[float]) -> None:
    _fill(storage)
    params = {**WINDOW, "metric": "pm2_5", "every": "1m", "agg": agg}
    response = client.get("/api/v1/readings", params=params)
    assert _values(response) == [("pm2_5", format_ts(T0_MS), expected[0]),
                                 ("pm2_5", format_ts(T0_MS + MIN_MS), expected[1])]
    assert response.json()["query"]["agg"] == agg


def test_downsampling_defaults_to_mean(client: TestClient, storage: Storage) -> None:
    _fill(storage)
    response = client.get("/api/v1/readings", params={**WINDOW, "metric": "pm2_5", "every": "1h"})
    assert [v for *_, v in _values(response)] == [27.5]
    assert response.json()["query"]["agg"] == "mean"


def test_limit_truncates_and_says_so(client: TestClient, storage: Storage) -> None:
    _fill(storage)
    response = client.get("/api/v1/readings", params={**WINDOW, "limit": 2})
    body = response.json()
    assert body["count"] == 2 and body["truncated"] is True
    assert response.headers["X-Fabcity-Truncated"] == "true"


def test_limit_equal_to_matches_is_not_truncated(client: TestClient,
                                                 storage: Storage) -> None:
    _fill(storage)
    response = client.get("/api/v1/readings", params={**WINDOW, "limit": 5})
    assert response.json()["truncated"] is False
    assert response.headers["X-Fabcity-Truncated"] == "false"


def test_csv_download_with_header_row(client: TestClient, storage: Storage) -> None:
    _fill(storage)
    response = client.get("/api/v1/readings", params={**WINDOW, "format": "csv", "limit": 3})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["X-Fabcity-Truncated"] == "true"
    lines = response.text.splitlines()
    assert lines[0].startswith("# licence: CC-BY-4.0")
    rows = list(csv.reader(io.StringIO("\n".join(x for x in lines if not x.startswith("#")))))
    assert rows[0] == ["site", "device", "sensor", "metric", "ts", "value", "unit", "flags"]
    assert rows[1] == ["street-12", "pi-air", "air", "pm2_5", format_ts(T0_MS), "10.0", "ug/m3",
                       ""]
    assert len(rows) == 4


def test_whole_calendar_range_is_accepted(client: TestClient, storage: Storage) -> None:
    _fill(storage)
    params = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59.999Z", "every": "1000w"}
    assert len(_values(client.get("/api/v1/readings", params=params))) == 2


def test_suggested_every_is_accepted(client: TestClient) -> None:
    params = {"start": "-30d", "every": "1s"}
    message = rejected(client.get("/api/v1/readings", params=params), "every")
    suggestion = message.rsplit(">= ", 1)[1]
    assert suggestion == "26s"
    response = client.get("/api/v1/readings", params={**params, "every": suggestion})
    assert response.status_code == 200


def test_storage_unavailable_answers_503(client: TestClient, storage: Storage) -> None:
    storage.close()
    response = client.get("/api/v1/readings")
    assert response.status_code == 503
    assert "storage unavailable" in response.json()["detail"]


@pytest.mark.parametrize(("params", "parameter", "says"), [
    ({"site": "Fablab"}, "site", "[a-z0-9][a-z0-9_-]{0,63}"),
    ({"device": "pi laser"}, "device", "[a-z0-9][a-z0-9_-]{0,63}"),
    ({"sensor": "1air"}, "sensor", "[a-z][a-z0-9_]{0,63}"),
    ({"metric": "pm2.5"}, "metric", "[a-z][a-z0-9_]{0,63}"),
    ({"metric": ""}, "metric", "[a-z][a-z0-9_]{0,63}"),
    ({"start": "yesterday"}, "start", "RFC 3339"),
    ({"end": "2026-13-01T00:00:00Z"}, "end", "RFC 3339"),
    ({"start": "2026-11-26T22:05:00"}, "start", "RFC 3339"),
    ({"start": "-24x"}, "start", "-24h"),
    ({"start": "-0h"}, "start", "before end"),
    ({"start": "-999999999w"}, "start", "out of range"),
    ({"start": "-1h", "end": "-2h"}, "start", "must be before end"),
    ({"start": "2026-11-26T22:00:00Z", "end": "2026-11-26T22:00:00Z"}, "start", "before end"),
    ({"every": "5 minutes"}, "every", "e.g. 30s, 5m"),
    ({"every": "0s"}, "every", "positive whole number"),
    ({"every": "500ms"}, "every", "unit s, m, h, d or w"),
    ({"every": "1s", "start": "-7d"}, "every", "at most 100000 buckets"),
    ({"every": "5m", "agg": "median"}, "agg", "'count' or 'increase'"),
    ({"agg": "max"}, "agg", "needs every"),
    ({"limit": "0"}, "limit", "greater than or equal to 1"),
    ({"limit": str(MAX_LIMIT + 1)}, "limit", f"less than or equal to {MAX_LIMIT}"),
    ({"limit": "many"}, "limit", "valid integer"),
    ({"format": "xml"}, "format", "'json' or 'csv'"),
    ({"from": "-1h"}, "from", "unknown parameter"),
])
def test_bad_parameters_answer_422_naming_the_parameter_and_rule(
        client: TestClient, params: dict[str, str], parameter: str, says: str) -> None:
    message = rejected(client.get("/api/v1/readings", params=params), parameter)
    assert says in message


def test_several_bad_parameters_are_all_named(client: TestClient) -> None:
    response = client.get("/api/v1/readings", params={"site": "A", "limit": "0"})
    assert response.status_code == 422
    assert sorted(e["parameter"] for e in response.json()["errors"]) == ["limit", "site"]
