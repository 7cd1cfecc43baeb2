"""openSenseMap forwarder against a local box API built from its documentation."""

from typing import Any

from fabcity.reading import Reading, format_ts
from hub.forward.cursor import ForwardCursors
from hub.forward.opensensemap import OpenSenseMapForwarder
from hub.metrics import HubMetrics
from hub.storage.sqlite import SqliteStorage
from tests.hub.forward.fakes import OSM_LIMIT, Scripted, opensensemap, serve

BOX = "5f0c1d2e3a4b5c6d7e8f9a0b"
PM25, PM10 = "5f0c1d2e3a4b5c6d7e8f9a01", "5f0c1d2e3a4b5c6d7e8f9a02"
TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z


def forwarder(storage: SqliteStorage, cursors: ForwardCursors, url: str,
              **options: Any) -> OpenSenseMapForwarder:
    opts = OpenSenseMapForwarder.Options.model_validate(
        {"to": "opensensemap", "devices": ["street/pole-01"], "url": url, "box_id": BOX,
         "token": TOKEN, "sensors": {"sds/pm2_5": PM25, "sds/pm10": PM10},
         "backfill_s": 10**9, "settle_s": 0, **options})
    return OpenSenseMapForwarder(opts, storage, cursors, HubMetrics())


def r(metric: str, value: float, ts_ms: int, flags: tuple[str, ...] = ()) -> Reading:
    return Reading("street", "pole-01", "sds", metric, value, ts_ms, None, flags)


def test_the_box_token_and_a_json_array_of_strings_with_rfc3339_times(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write([r("pm2_5", 12.3, T0), r("pm10", 20.0, T0), r("pm2_5", 12.345678, T0 + 1500),
                   r("temperature", 20.0, T0)])  # not mapped to a box sensor: not sent
    with serve(opensensemap(BOX, TOKEN, {PM25, PM10})) as api:
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + 60_000)
    (request,) = api.requests
    assert request.path == f"/boxes/{BOX}/data"
    assert request.headers["authorization"] == TOKEN
    assert request.headers["content-type"] == "application/json"
    assert request.body == [
        {"sensor": PM10, "value": "20", "createdAt": "2025-12-01T00:00:00.000Z"},
        {"sensor": PM25, "value": "12.3", "createdAt": "2025-12-01T00:00:00.000Z"},
        {"sensor": PM25, "value": "12.3457", "createdAt": "2025-12-01T00:00:01.500Z"},
    ]


def test_a_day_of_readings_goes_in_order_in_batches_within_the_limit(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    day = [r(metric, float(i % 300), T0 + i * 60_000)
           for i in range(1440) for metric in ("pm2_5", "pm10")]
    storage.write(day)
    with serve(opensensemap(BOX, TOKEN, {PM25, PM10})) as api:
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + 86_400_000)
        fw.run_once(T0 + 86_400_000 + 60_000)  # nothing new: nothing sent
    assert [len(q.body) for q in api.requests] == [OSM_LIMIT, len(day) - OSM_LIMIT]
    sent = [(m["sensor"], m["createdAt"]) for q in api.requests for m in q.body]
    assert len(sent) == len(set(sent)) == len(day)
    assert [t for _s, t in sent] == sorted(t for _s, t in sent)
    assert sent[-1][1] == format_ts(T0 + 1439 * 60_000)
    assert fw.status().lag_s == 0


def test_a_401_for_a_wrong_token_is_refused_counted_and_not_retried(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write([r("pm2_5", 1.0, T0)])
    with serve(opensensemap(BOX, TOKEN, {PM25, PM10})) as api:
        fw = forwarder(storage, cursors, api.url, token="wrong")
        fw.run_once(T0 + 60_000)
        fw.run_once(T0 + 120_000)
    assert len(api.requests) == 1
    assert fw.metrics.prometheus.get_sample_value(
        "fabcity_forward_refused_readings_total", {"forwarder": fw.name}) == 1


def test_no_answer_then_201_sends_the_same_batch_again_and_once_accepted_never_more(
        storage: SqliteStorage, cursors: ForwardCursors) -> None:
    storage.write([r("pm2_5", 1.0, T0), r("pm2_5", 2.0, T0 + 1)])
    with serve(opensensemap(BOX, TOKEN, {PM25, PM10})) as api:
        api.script = [Scripted(502), Scripted(429, {"Retry-After": "0"})]
        fw = forwarder(storage, cursors, api.url)
        fw.run_once(T0 + 60_000)
        storage.write([r("pm2_5", 3.0, T0 + 2)])
        fw.run_once(T0 + 60_000)
    assert [[m["value"] for m in q.body] for q in api.requests] == [
        ["1", "2"], ["1", "2"], ["1", "2"], ["3"]]
