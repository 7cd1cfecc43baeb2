"""Retained ``status`` and ``meta`` payloads."""

import json

import pytest

from fabcity.device import (
    MAX_META_BYTES,
    MAX_METRICS_PER_SENSOR,
    MAX_SENSORS_PER_DEVICE,
    MAX_STATUS_BYTES,
    MAX_TEXT_CHARS,
    decode_meta,
    decode_status,
)
from fabcity.errors import BadReading
from fabcity.topic import Kind, Topic


def test_status_online_with_details() -> None:
    status = decode_status(json.dumps({
        "state": "online", "ts": "2026-11-26T22:05:00.123Z", "version": "0.1.0",
        "uptime_s": 12.5, "buffered": 3, "extra": "kept"}).encode())
    assert status.state == "online" and status.buffered == 3 and status.uptime_s == 12.5


def test_status_needs_only_a_state() -> None:
    assert decode_status(b'{"state": "offline"}').state == "offline"


@pytest.mark.parametrize("body", [{}, {"state": "sleeping"}, {"state": "online", "buffered": "x"},
                                  [], "online"])
def test_status_schema_errors(body: object) -> None:
    with pytest.raises(BadReading) as err:
        decode_status(json.dumps(body).encode())
    assert err.value.reason == "bad_schema"


@pytest.mark.parametrize("payload", [b"", b"{", b"\xff", b"[" * 4_000])
def test_status_and_meta_json_errors(payload: bytes) -> None:
    for decode in (decode_status, decode_meta):
        with pytest.raises(BadReading) as err:
            decode(payload)
        assert err.value.reason == "bad_json"


def test_meta_full() -> None:
    meta = decode_meta(json.dumps({
        "site": "fablab-bcn", "device": "pi-laser", "kind": "machine", "name": "Laser",
        "location": {"lat": 41.39, "lon": 2.19}, "firmware": "1.2",
        "sensors": [{"name": "power", "driver": "current_clamp",
                     "metrics": {"power": "W", "state": "bool"}}]}).encode())
    assert meta.kind == "machine"
    assert meta.location is not None and meta.location.lat == 41.39
    assert meta.sensors[0].metrics == {"power": "W", "state": "bool"}


def test_meta_defaults_to_an_environment_device() -> None:
    meta = decode_meta(b'{"site": "s", "device": "d"}')
    assert meta.kind == "environment" and meta.sensors == [] and meta.location is None


@pytest.mark.parametrize("body", [
    {"device": "d"},
    {"site": "s", "device": "d", "kind": "robot"},
    {"site": "s", "device": "d", "location": {"lat": 91, "lon": 0}},
    {"site": "s", "device": "d", "location": {"lat": 0, "lon": 181}},
    {"site": "s", "device": "d", "sensors": [{"name": "Bad Name", "driver": "x", "metrics": {}}]},
    {"site": "s", "device": "d", "sensors": [{"name": "ok", "driver": "x"}]},
])
def test_meta_schema_errors(body: object) -> None:
    with pytest.raises(BadReading) as err:
        decode_meta(json.dumps(body).encode())
    assert err.value.reason == "bad_schema"


# Bounds, identity and encodability: what the hub keeps and serves on every call.

def _meta(**changes: object) -> bytes:
    body: dict[str, object] = {"site": "lab", "device": "pi-1"}
    body.update(changes)
    return json.dumps(body).encode()


def _sensor(i: int, metrics: int = 1) -> dict[str, object]:
    return {"name": f"s{i}", "driver": "x", "metrics": {f"m{j}": "W" for j in range(metrics)}}


def test_limits_are_accepted_at_the_edge_of_the_contract() -> None:
    meta = decode_meta(_meta(name="n" * MAX_TEXT_CHARS, sensors=[
        _sensor(i, MAX_METRICS_PER_SENSOR if i == 0 else 1)
        for i in range(MAX_SENSORS_PER_DEVICE)]))
    assert len(meta.sensors) == MAX_SENSORS_PER_DEVICE
    assert len(meta.sensors[0].metrics) == MAX_METRICS_PER_SENSOR


@pytest.mark.parametrize(("payload", "reason"), [
    (_meta(sensors=[_sensor(i) for i in range(20_000)]), "oversized"),
    (_meta(name="n" * (MAX_META_BYTES + 1)), "oversized"),
    (_meta(sensors=[_sensor(i) for i in range(MAX_SENSORS_PER_DEVICE + 1)]), "bad_schema"),
    (_meta(sensors=[_sensor(0, MAX_METRICS_PER_SENSOR + 1)]), "bad_schema"),
    (_meta(name="n" * (MAX_TEXT_CHARS + 1)), "bad_schema"),
    (_meta(firmware="f" * (MAX_TEXT_CHARS + 1)), "bad_schema"),
    (_meta(sensors=[{"name": "a", "driver": "d" * (MAX_TEXT_CHARS + 1), "metrics": {}}]),
     "bad_schema"),
    (_meta(sensors=[{"name": "a", "driver": "x", "metrics": {"power": "W" * 25}}]), "bad_schema"),
    (_meta(sensors=[{"name": "a", "driver": "x", "metrics": {"Power Now": "W"}}]), "bad_schema"),
])
def test_oversized_meta_is_refused_before_it_is_kept(payload: bytes, reason: str) -> None:
    with pytest.raises(BadReading) as err:
        decode_meta(payload)
    assert err.value.reason == reason
    assert len(str(err.value)) < 500


@pytest.mark.parametrize(("payload", "reason"), [
    (json.dumps({"state": "online", "x": "y" * MAX_STATUS_BYTES}).encode(), "oversized"),
    (json.dumps({"state": "online", "version": "v" * (MAX_TEXT_CHARS + 1)}).encode(),
     "bad_schema"),
    (json.dumps({"state": "online", "ts": "t" * (MAX_TEXT_CHARS + 1)}).encode(), "bad_schema"),
])
def test_oversized_status_is_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(BadReading) as err:
        decode_status(payload)
    assert err.value.reason == reason


@pytest.mark.parametrize("payload", [
    b'{"state": "online", "x": "\\udfff"}',
    b'{"state": "online", "\\ud800": 1}',
    b'{"state": "online", "version": "\\udfff"}',
])
def test_a_lone_surrogate_in_a_status_is_bad_json(payload: bytes) -> None:
    with pytest.raises(BadReading) as err:
        decode_status(payload)
    assert err.value.reason == "bad_json"


def test_a_lone_surrogate_in_a_meta_is_bad_json() -> None:
    with pytest.raises(BadReading) as err:
        decode_meta(b'{"site": "lab", "device": "pi-1", "name": "\\udfff"}')
    assert err.value.reason == "bad_json"


@pytest.mark.parametrize(("site", "device"), [("lab", "pi-2"), ("other", "pi-1")])
def test_a_meta_naming_another_device_than_its_topic_is_refused(site: str, device: str) -> None:
    topic = Topic("lab", "pi-1", Kind.META)
    assert decode_meta(_meta(), topic).device == "pi-1"
    with pytest.raises(BadReading) as err:
        decode_meta(_meta(site=site, device=device), topic)
    assert err.value.reason == "identity_mismatch"
