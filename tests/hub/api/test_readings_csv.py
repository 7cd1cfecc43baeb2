"""The CSV download: licence comments, time zones, HEAD."""

import pytest
from fastapi.testclient import TestClient

from fabcity.reading import format_ts
from hub.api import create_app
from hub.config import OpenDataConfig, SiteConfig
from hub.context import HubContext
from hub.storage.base import Storage
from tests.hub.api.conftest import T0_MS, reading, rejected

WINDOW = {"start": format_ts(T0_MS), "end": format_ts(T0_MS + 3_600_000)}
JULY_MS = 1_783_000_800_000  # 2026-07-02T14:00:00Z, summer time in Madrid


def _fill(storage: Storage) -> None:
    storage.write([reading("pm2_5", 10.5, T0_MS + 1_234, site="street-12", device="pi-air"),
                   reading("power", 800.0, T0_MS, sensor="power")])


def _sqlite_only(storage: Storage) -> None:
    if type(storage).__name__ != "SqliteStorage":
        pytest.skip("formatting does not depend on the back-end")


def test_csv_starts_with_licence_attribution_and_query_comments(
        ctx: HubContext, storage: Storage) -> None:
    _sqlite_only(storage)
    _fill(storage)
    ctx.sites = [SiteConfig(id="fablab-bcn", name="Fab Lab", licence="ODbL-1.0")]
    ctx.open_data = OpenDataConfig(attribution="City sensors of Barcelona")
    client = TestClient(create_app(ctx))
    lines = client.get("/api/v1/readings", params={**WINDOW, "format": "csv"}).text.splitlines()
    assert lines[:2] == ["# licence: ODbL-1.0 (fablab-bcn)", "# licence: CC-BY-4.0 (street-12)"]
    assert lines[2] == "# attribution: City sensors of Barcelona"
    assert lines[3].startswith(f"# query: start={WINDOW['start']}, end={WINDOW['end']}")
    assert lines[5] == "site,device,sensor,metric,ts,value,unit,flags"
    assert lines[6:] == [f"fablab-bcn,pi-laser,power,power,{format_ts(T0_MS)},800.0,W,",
                         f"street-12,pi-air,air,pm2_5,{format_ts(T0_MS + 1_234)},10.5,ug/m3,"]


@pytest.mark.parametrize(("ts_ms", "local"), [
    (T0_MS + 1_234, "2026-11-18T01:00:01.234+01:00"),
    (JULY_MS, "2026-07-02T16:00:00.000+02:00"),
])
def test_tz_formats_csv_timestamps_in_local_time_with_offset(
        client: TestClient, storage: Storage, ts_ms: int, local: str) -> None:
    _sqlite_only(storage)
    storage.write([reading("co2", 400.0, ts_ms)])
    params = {"start": format_ts(ts_ms), "end": format_ts(ts_ms + 1), "format": "csv",
              "tz": "Europe/Madrid"}
    last = client.get("/api/v1/readings", params=params).text.splitlines()[-1]
    assert last.split(",")[4] == local
    assert client.get("/api/v1/readings", params={**params, "format": "json"}).json()[
        "readings"][0]["ts"] == format_ts(ts_ms)  # JSON stays UTC


@pytest.mark.parametrize("tz", ["Mars/Olympus", "Europe/../etc/passwd", "Europe", "", "CET "])
def test_unknown_tz_answers_422_naming_tz(client: TestClient, tz: str) -> None:
    assert "IANA" in rejected(client.get("/api/v1/readings", params={"tz": tz}), "tz")


def test_head_answers_the_headers_of_get_without_a_body(client: TestClient,
                                                        storage: Storage) -> None:
    _sqlite_only(storage)
    _fill(storage)
    for fmt in ("csv", "json"):
        params = {**WINDOW, "format": fmt}
        got, head = client.get("/api/v1/readings", params=params), \
            client.head("/api/v1/readings", params=params)
        assert head.status_code == 200 and head.content == b""
        for name in ("content-type", "etag", "cache-control", "x-data-licence",
                     "x-fabcity-truncated", "link"):
            assert head.headers.get(name) == got.headers.get(name), name
