"""Retained ``status`` and ``meta`` payloads."""

import json

import pytest

from fabcity.device import decode_meta, decode_status
from fabcity.errors import BadReading


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


@pytest.mark.parametrize("payload", [b"", b"{", b"\xff", b"[" * 100_000])
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
