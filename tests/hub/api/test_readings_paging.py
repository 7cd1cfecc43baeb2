"""Paging with ``next``/``cursor``: every reading once, in order, whatever the page size."""

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fabcity.reading import format_ts
from hub.api.cursor import Cursor
from hub.api.routes import readings as readings_route
from hub.storage.base import Storage
from tests.hub.api.conftest import T0_MS, reading, rejected

SERIES = [("fablab-bcn", "pi-laser", "power", "energy"),
          ("fablab-bcn", "pi-laser", "power", "power"),
          ("fablab-bcn", "pi-cnc", "air", "pm2_5"), ("street-12", "pi-air", "air", "pm2_5"),
          ("street-12", "pi-air", "mic", "noise")]
POINTS = 700  # per series: 3,500 readings, one every 10 s
STEP_MS = 10_000
WINDOW = {"start": format_ts(T0_MS), "end": format_ts(T0_MS + POINTS * STEP_MS)}
Row = tuple[str, str, str, str, str, float]


def _fill(storage: Storage) -> None:
    batch = []
    for n, (site, device, sensor, metric) in enumerate(SERIES):
        for i in range(POINTS):
            value = float(i * 3 % 50) if metric == "energy" else float(n * 1000 + i)
            batch.append(reading(metric, value, T0_MS + i * STEP_MS, site=site, device=device,
                                 sensor=sensor))
    storage.write(batch)


def _rows(body: dict[str, Any]) -> list[Row]:
    return [(r["site"], r["device"], r["sensor"], r["metric"], r["ts"], r["value"])
            for r in body["readings"]]


def _all_pages(client: TestClient, params: dict[str, Any]) -> tuple[list[Row], int]:
    response = client.get("/api/v1/readings", params=params)
    out, pages = [], 0
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        out += _rows(body)
        pages += 1
        if body["next"] is None:
            assert "rel=\"next\"" not in response.headers.get("link", "")
            return out, pages
        assert body["truncated"] is True
        link = response.links["next"]["url"]
        assert f"cursor={body['next']}" in link
        response = client.get(link)


@pytest.mark.parametrize("extra", [
    {}, {"every": "1m", "agg": "increase"}, {"every": "5m", "agg": "max"}, {"metric": "pm2_5"},
    {"site": "street-12", "every": "1m", "agg": "mean"},
], ids=["raw", "increase-1m", "max-5m", "one-metric", "one-site-1m"])
def test_following_next_gives_exactly_the_whole_answer(client: TestClient, storage: Storage,
                                                       extra: dict[str, str]) -> None:
    _fill(storage)
    whole = _rows(client.get("/api/v1/readings",
                             params={**WINDOW, **extra, "limit": 100_000}).json())
    assert len(whole) >= 100
    size = len(whole) // 7 + 1  # pages end inside series and on their boundaries
    paged, pages = _all_pages(client, {**WINDOW, **extra, "limit": size})
    assert paged == whole
    assert pages == -(-len(whole) // size)


def test_downsampled_pages_from_an_unaligned_start_match_the_whole_answer(
        client: TestClient, storage: Storage) -> None:
    _fill(storage)
    params = {"start": format_ts(T0_MS + 25_000), "end": WINDOW["end"], "every": "1m",
              "agg": "increase"}
    whole = _rows(client.get("/api/v1/readings", params={**params, "limit": 100_000}).json())
    paged, _ = _all_pages(client, {**params, "limit": 7})
    assert paged == whole


def test_csv_stream_pages_through_storage_and_matches_json(
        client: TestClient, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(storage)
    monkeypatch.setattr(readings_route, "CSV_PAGE_ROWS", 251)
    whole = _rows(client.get("/api/v1/readings", params={**WINDOW, "limit": 100_000}).json())
    response = client.get("/api/v1/readings", params={**WINDOW, "format": "csv"})
    assert response.headers["X-Fabcity-Truncated"] == "false"
    lines = [x for x in response.text.splitlines() if not x.startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(lines))))[1:]
    assert [(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows] == whole


def test_a_limited_csv_continues_with_its_next_link(client: TestClient,
                                                    storage: Storage) -> None:
    _fill(storage)
    response = client.get("/api/v1/readings", params={**WINDOW, "format": "csv", "limit": 1000})
    texts = [response.text]
    while response.headers["X-Fabcity-Truncated"] == "true":
        response = client.get(response.links["next"]["url"])
        assert response.status_code == 200
        texts.append(response.text)
    assert len(texts) == 4
    rows = [x for t in texts for x in t.splitlines()
            if not x.startswith("#") and not x.startswith("site,")]
    assert len(rows) == len(set(rows)) == len(SERIES) * POINTS


def test_relative_range_pages_keep_the_first_page_window(client: TestClient,
                                                         storage: Storage) -> None:
    _fill(storage)
    response = client.get("/api/v1/readings", params={"start": "-5000d", "limit": 10})
    link = response.links["next"]["url"]
    assert "start=-5000d" not in link
    assert response.json()["query"]["start"].replace(":", "%3A") in link


@pytest.mark.parametrize("cursor", [
    "x", "!!!", "bm90IGpzb24", Cursor("A", "b", "c", "d", 1).encode(),
    "WyJhIiwiYiIsImMiLCJkIiwiMSJd"])
def test_bad_cursor_answers_422_naming_cursor(client: TestClient, cursor: str) -> None:
    assert "cursor" in rejected(client.get("/api/v1/readings", params={**WINDOW,
                                                                         "cursor": cursor}),
                                "cursor")


def test_cursor_of_another_query_is_refused(client: TestClient) -> None:
    other_site = Cursor("street-12", "pi-air", "air", "pm2_5", T0_MS).encode()
    message = rejected(client.get("/api/v1/readings", params={
        **WINDOW, "site": "fablab-bcn", "cursor": other_site}), "cursor")
    assert "site differs" in message
    outside = Cursor("street-12", "pi-air", "air", "pm2_5", T0_MS - 1).encode()
    assert "outside" in rejected(client.get("/api/v1/readings",
                                            params={**WINDOW, "cursor": outside}), "cursor")
