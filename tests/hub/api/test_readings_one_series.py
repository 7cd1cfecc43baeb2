"""Raw pages of one named series, read as plain rows (``Storage.series_points``), are the
bytes and headers the general path (a :class:`Reading` per point) answers."""

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from fabcity.reading import Reading, format_ts
from hub.api import create_app
from hub.config import ApiConfig
from hub.context import HubContext
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery, SeriesPoints, Storage
from hub.storage.sqlite import SqliteStorage
from tests.hub.api.conftest import T0_MS, readings_pages

DAY_MS = 86_400_000
# A hundred pages in a row from one client: the anonymous rate limit would answer 429.
UNLIMITED = ApiConfig(rate_limit_per_s=100_000, rate_limit_burst=100_000)
SERIES = ("fablab-bcn", "pi-laser", "air", "pm2_5")
FLAGS: list[tuple[str, ...]] = [(), ("suspect_humidity",), (), ("a", "b_2"), ()]
VALUES = [0.0, -0.0, 0.1, 1e16, 1.2345678901234567e-7, 21.5, -2.5, 5e-324, 12.0, 1e-5]


def _readings() -> list[Reading]:
    """Points of the series across a day boundary, at millisecond instants, with flags;
    and neighbours that sort just before and after it with another unit."""
    out = [Reading(*SERIES, VALUES[i % len(VALUES)], T0_MS - 3_600_000 + i * 61_007,
                   None, FLAGS[i % len(FLAGS)]) for i in range(200)]
    out += [Reading("fablab-bcn", "pi-laser", "air", "temperature", 20 + i / 7,
                    T0_MS + i * 1000, "degC") for i in range(30)]
    out += [Reading("fablab-bcn", "pi-laser", "air", "pm1", 1.0 + i, T0_MS + i * 1000)
            for i in range(30)]
    return out


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    storage = SqliteStorage(tmp_path / "one.db", synchronous="normal")
    registry = DeviceRegistry(tmp_path / "registry.db")
    storage.write(_readings())
    ctx = HubContext(storage=storage, registry=registry, metrics=HubMetrics(),
                     mqtt_connected=lambda: True, api=UNLIMITED)
    with TestClient(create_app(ctx)) as c:
        yield c
    storage.close()
    registry.close()


def _general_path(storage: Storage, q: ReadingQuery) -> SeriesPoints | None:
    return Storage.series_points(storage, q)  # None: no plain-row read


WHOLE = {"start": format_ts(T0_MS - DAY_MS), "end": format_ts(T0_MS + DAY_MS)}
CASES = [
    {**WHOLE},
    {**WHOLE, "limit": "7"},
    {**WHOLE, "limit": "1"},
    {**WHOLE, "limit": "200"},
    {"start": format_ts(T0_MS - 61_007), "end": format_ts(T0_MS + 3 * 61_007 + 1),
     "limit": "2"},
    {"start": format_ts(T0_MS + DAY_MS), "end": format_ts(T0_MS + 2 * DAY_MS)},
]


@pytest.mark.parametrize("params", CASES)
@pytest.mark.parametrize("series", [SERIES, ("fablab-bcn", "pi-laser", "air", "pm1"),
                                    ("fablab-bcn", "pi-nothing", "air", "pm2_5")])
def test_one_series_answers_as_the_general_path(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, params: dict[str, str],
        series: tuple[str, str, str, str]) -> None:
    asked: list[ReadingQuery] = []
    real = SqliteStorage.series_points

    def counted(storage: SqliteStorage, q: ReadingQuery) -> SeriesPoints:
        asked.append(q)
        return real(storage, q)

    query = {**dict(zip(("site", "device", "sensor", "metric"), series, strict=True)), **params}
    monkeypatch.setattr(SqliteStorage, "series_points", counted)
    fast = readings_pages(client, query)
    assert len(asked) == len(fast)  # every page went the plain-row way
    monkeypatch.setattr(SqliteStorage, "series_points", _general_path)
    general = readings_pages(client, query)
    for a, b in zip(fast, general, strict=True):
        assert a[0] == b[0]
        assert a[1] == b[1]
        assert a[2] == b[2]
    assert all(status == 200 for status, _, _ in fast)


def test_the_pages_hold_every_point_once_with_its_flags(client: TestClient) -> None:
    query = {**dict(zip(("site", "device", "sensor", "metric"), SERIES, strict=True)),
             **WHOLE, "limit": "64"}
    pages = readings_pages(client, query)
    assert [headers["x-fabcity-truncated"] for _, headers, _ in pages] == [
        "true", "true", "true", "false"]
    rows = [r for _, _, body in pages for r in orjson.loads(body)["readings"]]
    assert [r["ts"] for r in rows] == [format_ts(T0_MS - 3_600_000 + i * 61_007)
                                       for i in range(200)]
    assert [r["flags"] for r in rows[:5]] == [[], ["suspect_humidity"], [], ["a", "b_2"], []]
    assert [r["value"] for r in rows[:10]] == VALUES
    assert {r["unit"] for r in rows} == {"ug/m3"}
