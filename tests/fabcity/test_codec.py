"""The JSON codec: what a ``readings`` message may contain and how each rejection is named."""

import json
from typing import Any

import pytest

from fabcity.codec import (
    MAX_AGE_S,
    MAX_FUTURE_S,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
    Batch,
    decode_batch,
    encode_batch,
)
from fabcity.errors import BadReading
from fabcity.reading import Reading, format_ts
from fabcity.topic import Kind, Topic

NOW = 1_795_730_700_123  # 2026-11-26T22:05:00.123Z
TOPIC = Topic("fablab-bcn", "pi-laser", Kind.READINGS)


def item(**changes: object) -> dict[str, object]:
    good: dict[str, object] = {"sensor": "sds011", "metric": "pm2_5", "value": 12.4,
                               "unit": "ug/m3", "ts": format_ts(NOW)}
    good.update(changes)
    return {k: v for k, v in good.items() if v is not ...}


def decode(body: Any) -> Batch:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_batch(TOPIC, payload, now=NOW)


def refused(body: Any) -> str:
    with pytest.raises(BadReading) as err:
        decode(body)
    return err.value.reason


def rejected_reason(**changes: object) -> str:
    """Decode a batch of one good and one changed reading; return why the second was refused."""
    batch = decode({"seq": 1, "readings": [item(), item(**changes)]})
    assert len(batch.readings) == 1, "the good reading must survive"
    (exc,) = batch.rejected
    assert str(exc).startswith("readings[1]: ")
    return exc.reason


# Round trips.

def test_encode_then_decode_gives_equal_readings() -> None:
    readings = [
        Reading("fablab-bcn", "pi-laser", "sds011", "pm2_5", 12.4, NOW, "µg/m³"),
        Reading("fablab-bcn", "pi-laser", "meter", "energy", 123456789, NOW + 1),
        Reading("fablab-bcn", "pi-laser", "anemo", "wind_speed", -0.5, NOW - 999, "m/s",
                ("suspect_spike",)),
    ]
    batch = decode_batch(TOPIC, encode_batch(7, readings), now=NOW)
    assert batch.seq == 7
    assert batch.readings == readings
    assert batch.rejected == []


def test_encoding_is_compact_ascii_json_with_utc_milliseconds() -> None:
    payload = encode_batch(3, [Reading("s", "d", "t", "temperature", 21.5, NOW, "°C")])
    assert json.loads(payload) == {"seq": 3, "readings": [
        {"sensor": "t", "metric": "temperature", "value": 21.5, "unit": "degC",
         "ts": "2026-11-26T22:05:00.123Z"}]}
    assert b" " not in payload


def test_offsets_are_converted_to_utc() -> None:
    batch = decode({"readings": [item(ts="2026-11-27T00:05:00.123+02:00")]})
    assert batch.readings[0].ts_ms == NOW
    assert batch.readings[0].ts == "2026-11-26T22:05:00.123Z"


def test_seq_is_optional_and_extra_fields_are_ignored() -> None:
    batch = decode({"readings": [item(note="hello")], "extra": True})
    assert batch.seq == 0 and len(batch.readings) == 1


def test_unit_is_optional_for_catalogued_metrics_and_aliases_normalise() -> None:
    batch = decode({"readings": [item(unit=...), item(unit="µg/m³", ts=format_ts(NOW - 1)),
                                 item(metric="temperature", unit="°C")]})
    assert [r.unit for r in batch.readings] == ["ug/m3", "ug/m3", "degC"]


def test_site_and_device_come_from_the_topic() -> None:
    (r,) = decode({"readings": [item(site="other", device="other")]}).readings
    assert (r.site, r.device) == ("fablab-bcn", "pi-laser")


def test_empty_batch_is_valid() -> None:
    assert decode({"seq": 5, "readings": []}).readings == []


# Whole-message rejections.

@pytest.mark.parametrize("payload", [b"", b"{", b"not json", b'{"readings": [}',
                                     b"\xff\xfe\x00", b'{"readings": "\xc3\x28"}',
                                     '{"readings": []}'.encode("utf-16"),
                                     b'\xef\xbb\xbf{"readings": []}',  # UTF-8 byte order mark
                                     b"[" * 100_000])
def test_non_utf8_or_malformed_json_is_bad_json(payload: bytes) -> None:
    assert refused(payload) == "bad_json"


@pytest.mark.parametrize("body", [[], [item()], "readings", 42, None, True])
def test_top_level_must_be_an_object(body: object) -> None:
    assert refused(body) == "bad_schema"


@pytest.mark.parametrize("body", [
    {"seq": 1},
    {"seq": 1, "readings": None},
    {"seq": 1, "readings": {"0": item()}},
    {"seq": -1, "readings": []},
    {"seq": 1.5, "readings": []},
    {"seq": "1", "readings": []},
    {"seq": True, "readings": []},
])
def test_seq_and_readings_types_are_checked(body: object) -> None:
    assert refused(body) == "bad_schema"


def test_payload_over_256_kib_is_oversized_before_parsing() -> None:
    payload = b'{"readings": [], "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    assert refused(payload) == "oversized"
    fits = b'{"readings":[],"pad":"' + b"x" * (MAX_PAYLOAD_BYTES - 25) + b'"}'
    assert len(fits) <= MAX_PAYLOAD_BYTES
    assert decode(fits).readings == []


def test_more_than_5000_readings_is_oversized_even_within_256_kib() -> None:
    assert MAX_READINGS_PER_BATCH == 5000
    with pytest.raises(BadReading, match="5001 readings exceed 5000") as err:
        decode({"readings": [0] * 5001})
    assert err.value.reason == "oversized"
    batch = decode({"readings": [0] * 5000})  # within the count: judged one by one
    assert len(batch.rejected) == 5000


def test_a_full_batch_of_small_readings_fits_the_byte_limit() -> None:
    tiny = {"sensor": "a", "metric": "state", "value": 1, "ts": format_ts(NOW)}
    count = MAX_PAYLOAD_BYTES // (len(json.dumps(tiny, separators=(",", ":"))) + 1) - 1
    payload = json.dumps({"readings": [tiny] * count}, separators=(",", ":")).encode()
    assert len(payload) <= MAX_PAYLOAD_BYTES
    assert len(decode(payload).readings) == count


@pytest.mark.parametrize("kind", [Kind.STATUS, Kind.META, Kind.CMD])
def test_other_topic_kinds_do_not_carry_readings(kind: Kind) -> None:
    with pytest.raises(BadReading) as err:
        decode_batch(Topic("s", "d", kind), b'{"readings": []}', now=NOW)
    assert err.value.reason == "unknown_kind"


# Per-reading rejections: the rest of the batch survives.

@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_and_the_good_readings_survive(value: str) -> None:
    payload = ('{"seq":1,"readings":[' + json.dumps(item()) + ","
               + json.dumps(item(value=0)).replace("0,", value + ",", 1) + ","
               + json.dumps(item(ts=format_ts(NOW - 1))) + "]}").encode()
    assert value.encode() in payload
    batch = decode(payload)
    assert [r.ts_ms for r in batch.readings] == [NOW, NOW - 1]
    assert [e.reason for e in batch.rejected] == ["bad_value"]
    assert str(batch.rejected[0]).startswith("readings[1]: ")


@pytest.mark.parametrize("value", [True, False, "12", None, [1], {"v": 1}, 10**400])
def test_booleans_strings_and_huge_ints_are_bad_values(value: object) -> None:
    assert rejected_reason(value=value) == "bad_value"


@pytest.mark.parametrize("field", ["sensor", "metric"])
@pytest.mark.parametrize("name", ["PM25", "2pm", "x" * 65, "pm2.5", "ñ", "a b", "a,b", "a=b",
                                  "a\nb", "a\\b", "", 7, None, [], {}])
def test_names_outside_the_charset_are_bad_names(field: str, name: object) -> None:
    assert rejected_reason(**{field: name}) == "bad_name"


def test_64_character_names_are_fine() -> None:
    assert len(decode({"readings": [item(sensor="s" * 64, metric="m" * 64, unit="x")]}).readings)


@pytest.mark.parametrize("field", ["sensor", "metric", "value", "ts"])
def test_missing_required_fields_are_bad_schema(field: str) -> None:
    assert rejected_reason(**{field: ...}) == "bad_schema"


@pytest.mark.parametrize("entry", [None, 1, "reading", [1, 2]])
def test_readings_that_are_not_objects_are_bad_schema(entry: object) -> None:
    batch = decode({"readings": [item(), entry]})
    assert len(batch.readings) == 1
    assert [e.reason for e in batch.rejected] == ["bad_schema"]


@pytest.mark.parametrize("ts", ["2026-11-26T22:05:00.123", "2026-11-26", "22:05:00",
                                "2026-11-26 22:05:00Z", "26/11/2026 22:05", NOW, None, ""])
def test_timestamps_without_offset_or_not_rfc3339_are_bad_timestamps(ts: object) -> None:
    assert rejected_reason(ts=ts) == "bad_timestamp"


def test_future_window_is_five_minutes() -> None:
    assert MAX_FUTURE_S == 300
    assert len(decode({"readings": [item(ts=format_ts(NOW + 300_000))]}).readings) == 1
    assert rejected_reason(ts=format_ts(NOW + 300_001)) == "future_timestamp"
    assert rejected_reason(ts="2999-01-01T00:00:00Z") == "future_timestamp"


def test_age_window_is_400_days() -> None:
    assert MAX_AGE_S == 400 * 86_400
    oldest = NOW - MAX_AGE_S * 1000
    assert len(decode({"readings": [item(ts=format_ts(oldest))]}).readings) == 1
    assert rejected_reason(ts=format_ts(oldest - 1)) == "stale_timestamp"
    assert rejected_reason(ts="1970-01-01T00:00:00Z") == "stale_timestamp"
    assert rejected_reason(ts="0001-01-01T00:00:00+01:00") == "stale_timestamp"


def test_windows_can_be_configured() -> None:
    late = json.dumps({"readings": [item(ts=format_ts(NOW + 3_600_000))]}).encode()
    assert decode_batch(TOPIC, late, now=NOW).rejected[0].reason == "future_timestamp"
    assert decode_batch(TOPIC, late, now=NOW, max_future_s=7200).readings


def test_units_are_checked() -> None:
    assert rejected_reason(unit="mg/m3") == "unit_mismatch"
    assert rejected_reason(metric="wind_speed", unit=...) == "bad_unit"
    assert rejected_reason(metric="wind_speed", unit="m s") == "bad_unit"
    assert rejected_reason(unit=12) == "bad_unit"


@pytest.mark.parametrize("flags", ["suspect", [1], ["Not Ok"], None, {"a": 1}])
def test_bad_flags_are_refused(flags: object) -> None:
    assert rejected_reason(flags=flags) == "bad_flags"


def test_every_reading_of_a_hostile_batch_gets_its_own_reason() -> None:
    batch = decode({"seq": 9, "readings": [
        item(), item(value=True), item(sensor="DROP TABLE"), item(ts="2026-11-26"),
        item(ts="2999-01-01T00:00:00Z"), item(ts="1999-01-01T00:00:00Z"), item(unit="ppm"),
        item(metric="x", unit=...), item(flags="x"), 5, item(ts=...),
    ]})
    assert len(batch.readings) == 1
    assert [e.reason for e in batch.rejected] == [
        "bad_value", "bad_name", "bad_timestamp", "future_timestamp", "stale_timestamp",
        "unit_mismatch", "bad_unit", "bad_flags", "bad_schema", "bad_schema"]


def test_an_integer_too_long_for_python_is_a_bad_value_not_bad_json() -> None:
    payload = json.dumps({"seq": 1, "readings": [item(value=12), item(metric="pm10")]})
    payload = payload.replace('"value": 12', '"value": ' + "9" * 5000, 1)
    batch = decode(payload.encode())
    assert [r.metric for r in batch.readings] == ["pm10"]
    (exc,) = batch.rejected
    assert exc.reason == "bad_value" and "5000 digits" in str(exc)
    assert len(str(exc)) < 200


def test_a_seq_too_long_for_python_is_a_bad_schema() -> None:
    assert refused(b'{"seq": ' + b"7" * 5000 + b', "readings": []}') == "bad_schema"
