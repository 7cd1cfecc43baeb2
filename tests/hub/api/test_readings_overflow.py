"""Downsampled answers over values near the float limit (1.7e308): no 500, no infinity, and
the answer says how many buckets it left out; the rollup worker survives such a series."""

import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fabcity.reading import format_ts
from hub.api.routes.readings import OMITTED_HEADER
from hub.storage.base import HOUR_MS, Storage
from hub.storage.rollup import SETTLE_MS, RollupState, RollupWorker
from tests.hub.api.conftest import T0_MS, reading

HUGE = 1.7e308
WINDOW = {"start": format_ts(T0_MS), "end": format_ts(T0_MS + HOUR_MS), "every": "1h"}


def _fill(storage: Storage) -> None:
    """Two huge readings 1 ms apart, a counter that rises beyond the float range (its sum,
    -x + x + 0.25, fits), and an ordinary series in the same bucket whose mean must stay
    exact."""
    storage.write([
        reading("pm2_5", HUGE, T0_MS), reading("pm2_5", HUGE, T0_MS + 1),
        reading("energy", -HUGE, T0_MS, sensor="meter"),
        reading("energy", HUGE, T0_MS + 1, sensor="meter"),
        reading("energy", 0.25, T0_MS + 2, sensor="meter"),
        reading("noise", 50.0, T0_MS, sensor="mic"), reading("noise", 61.0, T0_MS + 1,
                                                             sensor="mic"),
    ])


def _answer(client: TestClient, agg: str) -> tuple[dict[str, float], int]:
    response = client.get("/api/v1/readings", params={**WINDOW, "agg": agg})
    assert response.status_code == 200, response.text
    values = {r["metric"]: r["value"] for r in response.json()["readings"]}
    assert all(math.isfinite(v) for v in values.values()), values
    return values, int(response.headers[OMITTED_HEADER])


@pytest.mark.parametrize(("agg", "expected", "omitted"), [
    ("mean", {"pm2_5": HUGE, "energy": 0.25 / 3, "noise": 55.5}, 0),
    ("sum", {"energy": 0.25, "noise": 111.0}, 1),  # 2 x 1.7e308 does not fit
    ("increase", {"pm2_5": 0.0, "noise": 11.0}, 1),  # the counter rose by 3.4e308
    ("max", {"pm2_5": HUGE, "energy": HUGE, "noise": 61.0}, 0),
    ("count", {"pm2_5": 2.0, "energy": 3.0, "noise": 2.0}, 0),
])
def test_huge_values_give_finite_aggregates_or_a_count_of_buckets_left_out(
        client: TestClient, storage: Storage, agg: str, expected: dict[str, float],
        omitted: int) -> None:
    _fill(storage)
    values, left_out = _answer(client, agg)  # the same on every back-end
    assert values == expected
    assert left_out == omitted


def test_raw_answers_carry_no_omitted_header(client: TestClient, storage: Storage) -> None:
    _fill(storage)
    response = client.get("/api/v1/readings", params={"start": WINDOW["start"],
                                                      "end": WINDOW["end"]})
    assert response.status_code == 200 and response.json()["count"] == 7
    assert OMITTED_HEADER not in response.headers


def test_rollup_worker_rolls_up_huge_values_and_answers_from_rollups(
        client: TestClient, storage: Storage, tmp_path: Path) -> None:
    _fill(storage)
    state = RollupState(tmp_path / "state.db", storage.describe())
    worker = RollupWorker(storage, state)
    try:
        worker.run_once(T0_MS + 2 * HOUR_MS + SETTLE_MS)  # raises if a write is refused
        assert state.watermark(HOUR_MS) == T0_MS + 2 * HOUR_MS
        assert state.dirty() == []
        storage.rollups = state  # the hourly answer now comes from the stored rollups
        assert _answer(client, "mean") == ({"pm2_5": HUGE, "energy": 0.25 / 3, "noise": 55.5},
                                           0)
        values, left_out = _answer(client, "increase")
        assert values == {"pm2_5": 0.0, "noise": 11.0} and left_out == 1
    finally:
        storage.rollups = None
        state.close()
