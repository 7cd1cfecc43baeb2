"""First downsampled pages whose buckets are the rollups' own, written from the values the
back-end works out (``Storage.rollup_values``), are the bytes and headers the general path
(a :class:`Reading` per bucket) answers, and so are the pages after them."""

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from fabcity.reading import Reading, format_ts
from hub.api import create_app
from hub.config import ApiConfig, SiteConfig
from hub.context import HubContext
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import MINUTE_MS, ReadingQuery, RollupValues, Storage
from hub.storage.sqlite import SqliteStorage
from tests.hub.api.conftest import T0_MS, readings_pages
from tests.hub.storage.conftest import rolled_up_sqlite

UNLIMITED = ApiConfig(rate_limit_per_s=100_000, rate_limit_burst=100_000)
MINUTES = 120
ROLLED = T0_MS + 90 * MINUTE_MS  # the last half hour is read from raw points


def _readings() -> list[Reading]:
    """Three sites with their own licences, gaps, a unit-less metric, a series that starts
    after the rollups stop and a flow whose sums go beyond floats."""
    out: list[Reading] = []
    for k in range(MINUTES * 2):  # every 30 s
        ts = T0_MS + k * 30_000 + 11
        minute = k // 2
        if minute % 13 != 4:
            out.append(Reading("fablab-bcn", "pi-laser", "air", "pm2_5", 5 + k % 9 / 4, ts))
            out.append(Reading("fablab-bcn", "pi-laser", "air", "temperature",
                               20 - k % 5 / 8, ts, "degC"))
        out.append(Reading("street-12", "pi-air", "air", "no2", 30 + k % 11, ts, "ug/m3"))
        huge = 1.7e308 if minute in (10, 11, 100) else 2.0
        out.append(Reading("street-12", "pi-flow", "water", "flow", huge, ts, "l"))
        if ts >= ROLLED:
            out.append(Reading("zone-3", "pi-new", "air", "pm10", 12 + k % 3, ts))
    return out


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("values")
    storage = rolled_up_sqlite(path, _readings(), ROLLED, synchronous="normal")
    registry = DeviceRegistry(path / "registry.db")
    ctx = HubContext(storage=storage, registry=registry, metrics=HubMetrics(),
                     mqtt_connected=lambda: True, api=UNLIMITED)
    ctx.sites = [SiteConfig(id="fablab-bcn", name="Fab Lab", licence="ODbL-1.0"),
                 SiteConfig(id="street-12", name="Street", licence="LicenseRef-city")]
    with TestClient(create_app(ctx)) as c:
        yield c
    storage.close()
    registry.close()
    assert storage.rollups is not None
    storage.rollups.close()


def _general_path(storage: Storage, resolution_ms: int, q: ReadingQuery) -> None:
    return Storage.rollup_values(storage, resolution_ms, q)  # None: no values read


WHOLE = {"start": format_ts(T0_MS), "end": format_ts(T0_MS + MINUTES * MINUTE_MS)}
PARTIAL = {"start": format_ts(T0_MS + 20_001), "end": format_ts(T0_MS + 100 * MINUTE_MS + 7)}
CASES = [
    {**WHOLE},
    {**WHOLE, "limit": "211"},
    {**WHOLE, "limit": "97"},
    {**PARTIAL, "limit": "50"},
    {**PARTIAL, "site": "street-12", "limit": "40"},
    {**PARTIAL, "site": "street-12", "device": "pi-flow", "limit": "30"},
    {**WHOLE, "metric": "pm10"},
    {**WHOLE, "site": "nowhere"},
    {"start": format_ts(T0_MS + 30 * MINUTE_MS), "end": format_ts(T0_MS + 60 * MINUTE_MS)},
]


@pytest.mark.parametrize("params", CASES)
@pytest.mark.parametrize("agg", ["mean", "min", "max", "first", "last", "sum", "count"])
def test_rollup_buckets_answer_as_the_general_path(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, params: dict[str, str],
        agg: str) -> None:
    asked: list[ReadingQuery] = []
    real = SqliteStorage.rollup_values

    def counted(storage: SqliteStorage, resolution_ms: int,
                q: ReadingQuery) -> RollupValues | None:
        asked.append(q)
        return real(storage, resolution_ms, q)

    query = {**params, "every": "1m", "agg": agg}
    monkeypatch.setattr(SqliteStorage, "rollup_values", counted)
    fast = readings_pages(client, query)
    assert asked  # the first page went the values way
    monkeypatch.setattr(SqliteStorage, "rollup_values", _general_path)
    general = readings_pages(client, query)
    assert len(fast) == len(general)
    for a, b in zip(fast, general, strict=True):
        assert a[0] == b[0] == 200
        assert a[1] == b[1]
        assert a[2] == b[2]


def test_a_page_names_its_sites_licences_and_the_buckets_left_out(client: TestClient) -> None:
    response = client.get("/api/v1/readings", params={**WHOLE, "every": "1m", "agg": "sum",
                                                      "limit": "100000"})
    body = orjson.loads(response.content)
    assert body["licence"] == {"fablab-bcn": "ODbL-1.0", "street-12": "LicenseRef-city",
                               "zone-3": "CC-BY-4.0"}
    assert response.headers["x-fabcity-omitted-buckets"] == "3"  # the flow's three minutes
    flow = [r for r in body["readings"] if r["metric"] == "flow"]
    assert len(flow) == MINUTES - 3 and {r["value"] for r in flow} == {4.0}
    assert body["readings"][0] == {"site": "fablab-bcn", "device": "pi-laser", "sensor": "air",
                                   "metric": "pm2_5", "ts": format_ts(T0_MS),
                                   "value": 10.25, "unit": "ug/m3", "flags": []}
