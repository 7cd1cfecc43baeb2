"""The codec's fast path (orjson, names checked once) decides exactly as the exact path does."""

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import fabcity.codec as codec
from fabcity.codec import decode_batch
from fabcity.errors import BadReading
from fabcity.reading import format_ts
from fabcity.topic import Kind, Topic

NOW = 1_795_730_700_123  # 2026-11-26T22:05:00.123Z
TOPIC = Topic("fablab-bcn", "pi-laser", Kind.READINGS)

# Each field is good three times in four, else one of the values the contract refuses.
SENSORS = ["sds011", "S0", "a" * 64, "a" * 65, 5, None, ["x"], "é", "air,site=x"]
METRICS = ["pm2_5", "temperature", "wind_speed", "PM 2.5", "x"]
VALUES: list[object] = [12.4, 1, -0.0, 0, True, None, "1", 2**63, 2**64, -(2**63) - 1,
                        2**64 + 1, 123456789012345678901234567890, 1e308, [1], {"a": 1}]
TIMESTAMPS: list[object] = [
    format_ts(NOW), "2026-11-26T22:05:00Z", "2026-11-26T23:05:00.123+01:00", "2026-11-26",
    5, None, "2099-01-01T00:00:00Z", "1999-01-01T00:00:00Z", "2026-11-26t22:05:00.123z",
    "2026-11-26T23:59:60Z", "2026-11-26T22:05:00.1234567Z"]
UNITS: list[object] = [..., None, "ug/m3", "µg/m³", "ppm", "m/s", "", 5, "x" * 25]
FLAGS: list[object] = [..., [], ["suspect_spike"], ["Bad"], "x", None, [1], {}]
SPECIAL_BYTES = [b"\x00", b"\x1f", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                 b"\\u0000", b"\\ud800", b"\\udc00\\ud800", b"\xef\xbb\xbf", b"\t", b"\\",
                 b'"', b"e", b"-", b"0", b"9" * 30, b".", b",", b"]", b"}", b"[", b"{",
                 b"\xe2\x80\xa8", b"NaN", b"Infinity", b"true", b"null"]


@contextmanager
def exact_path_only() -> Iterator[None]:
    saved = codec._fast_loads
    codec._fast_loads = None
    try:
        yield
    finally:
        codec._fast_loads = saved


def outcome(payload: bytes) -> tuple[object, ...]:
    """Everything a caller can see of a decode: readings, each refusal and its message."""
    try:
        batch = decode_batch(TOPIC, payload, now=NOW)
    except BadReading as exc:
        return ("refused", exc.reason, str(exc))
    return (batch.seq, batch.first, batch.confirm, [tuple(r) for r in batch.readings],
            [(e.reason, str(e)) for e in batch.rejected])


def both(payload: bytes) -> tuple[tuple[object, ...], tuple[object, ...]]:
    fast = outcome(payload)
    with exact_path_only():
        return fast, outcome(payload)


def pick(rng: random.Random, choices: list[object]) -> object:
    return choices[0] if rng.random() < 0.75 else rng.choice(choices)


def random_body(rng: random.Random) -> object:
    items: list[object] = []
    for _ in range(rng.randint(0, 4)):
        item = {"sensor": pick(rng, SENSORS), "metric": pick(rng, METRICS),
                "value": pick(rng, VALUES), "ts": pick(rng, TIMESTAMPS)}
        for name, choices in (("unit", UNITS), ("flags", FLAGS)):
            chosen = pick(rng, choices)
            if chosen is not ...:
                item[name] = chosen
        if rng.random() < 0.05:
            del item[rng.choice(list(item))]
        if rng.random() < 0.05:
            item["later"] = {"nested": [[1]]}
        items.append(item if rng.random() > 0.02 else 5)
    body: dict[str, object] = {"readings": items}
    if rng.random() < 0.9:
        body["seq"] = pick(rng, [1, 0, -1, 2**64, "1", 1.0, True])
    if rng.random() < 0.5:
        body["first"] = pick(rng, [0, 1, 2, -1, 2**64, None, "0"])
    if rng.random() < 0.5:
        body["confirm"] = pick(rng, [True, False, 1, None, "true"])
    if rng.random() < 0.05:
        body["later"] = 1
    return body if rng.random() > 0.02 else [body]


@pytest.mark.parametrize("seed", range(4))
def test_generated_batches_decode_the_same_on_both_paths(seed: int) -> None:
    rng = random.Random(seed)
    stored = 0
    for _ in range(1500):
        fast, exact = both(json.dumps(random_body(rng), ensure_ascii=rng.random() < 0.5).encode())
        assert fast == exact
        stored += len(exact[3]) if exact[0] != "refused" else 0
    assert stored > 500  # the generator reaches the fast path, not only refusals


@pytest.mark.parametrize("seed", range(4))
def test_mutated_bytes_decode_the_same_on_both_paths(seed: int) -> None:
    rng = random.Random(seed)
    good = json.dumps({"seq": 3, "first": 2, "confirm": True, "readings": [
        {"sensor": "sds011", "metric": "pm2_5", "value": 12.5, "unit": "µg/m³",
         "ts": format_ts(NOW)},
        {"sensor": "sht31", "metric": "humidity", "value": 40, "ts": format_ts(NOW),
         "flags": ["suspect_humidity"]}]}, ensure_ascii=False).encode()
    assert both(good)[0][3]  # unmutated, it decodes
    for _ in range(1500):
        payload = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(payload))
            piece = rng.choice(SPECIAL_BYTES) if rng.random() < 0.7 else bytes([rng.randrange(256)])
            roll = rng.random()
            if roll < 0.4:
                payload[at:at + 1] = piece
            elif roll < 0.8:
                payload[at:at] = piece
            else:
                del payload[at:at + rng.randint(1, 4)]
        fast, exact = both(bytes(payload))
        assert fast == exact, bytes(payload)


def test_integers_beyond_64_bits_store_the_double_the_exact_path_stores() -> None:
    for literal in ("18446744073709551616", "-9223372036854775809", "9" * 300,
                    "123456789012345678901234567890"):
        payload = json.dumps({"seq": 1, "readings": [
            {"sensor": "m", "metric": "energy", "value": 0, "ts": format_ts(NOW)}]}).encode()
        payload = payload.replace(b'"value": 0', b'"value": ' + literal.encode())
        fast, exact = both(payload)
        assert fast == exact and fast[3][0][4] == float(int(literal))  # type: ignore[index]


def test_nesting_in_an_unknown_field_is_left_to_the_exact_path() -> None:
    deep = "[" * 995 + "]" * 995  # beyond json's recursion limit, within orjson's
    payload = json.dumps({"seq": 1, "readings": [
        {"sensor": "s", "metric": "pm2_5", "value": 1, "ts": format_ts(NOW), "later": 0}]})
    payload = payload.replace('"later": 0', '"later": ' + deep).encode()
    fast, exact = both(payload)
    assert fast == exact == ("refused", "bad_json", fast[2])


def test_a_plain_batch_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_exact_path(_payload: bytes) -> object:
        raise AssertionError("decoded twice")

    monkeypatch.setattr(codec, "load_json", no_exact_path)
    batch = decode_batch(TOPIC, json.dumps({"seq": 4, "first": 3, "confirm": True, "readings": [
        {"sensor": "sds011", "metric": "pm2_5", "value": 12.4, "unit": "ug/m3",
         "ts": format_ts(NOW)},
        {"sensor": "sds011", "metric": "pm10", "value": 20, "ts": format_ts(NOW + 1),
         "flags": ["suspect_spike"]}]}).encode(), now=NOW)
    assert [(r.metric, r.value, r.unit, r.flags) for r in batch.readings] == [
        ("pm2_5", 12.4, "ug/m3", ()), ("pm10", 20.0, "ug/m3", ("suspect_spike",))]
    assert type(batch.readings[1].value) is float
    assert (batch.seq, batch.first, batch.confirm) == (4, 3, True)
