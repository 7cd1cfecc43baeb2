"""The Reading model refuses what the wire contract refuses; timestamps are exact to the ms."""

import pytest

from fabcity.errors import BadReading
from fabcity.reading import Reading, format_ts, now_ms, parse_ts

TS = 1_795_730_700_123  # 2026-11-26T22:05:00.123Z


def reading(**changes: object) -> Reading:
    fields: dict[str, object] = {"site": "s", "device": "d", "sensor": "sds011",
                                 "metric": "pm2_5", "value": 12.4, "ts_ms": TS}
    fields.update(changes)
    return Reading(**fields)  # type: ignore[arg-type]


def reason(**changes: object) -> str:
    with pytest.raises(BadReading) as err:
        reading(**changes)
    return err.value.reason


def test_valid_reading_takes_the_canonical_unit_and_has_an_identity() -> None:
    r = reading(value=12)
    assert r.value == 12.0 and isinstance(r.value, float)
    assert r.unit == "ug/m3"
    assert r.key == ("s", "d", "sds011", "pm2_5", TS)
    assert r.ts == "2026-11-26T22:05:00.123Z"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_bad_values(value: float) -> None:
    assert reason(value=value) == "bad_value"


@pytest.mark.parametrize("value", [True, False, "12.4", None, [1], {"v": 1}])
def test_booleans_strings_and_containers_are_not_numbers(value: object) -> None:
    assert reason(value=value) == "bad_value"


def test_int_beyond_the_float_range_is_a_bad_value() -> None:
    assert reason(value=10**400) == "bad_value"
    assert reading(value=2**63).value == float(2**63)


@pytest.mark.parametrize("field", ["site", "device", "sensor", "metric"])
@pytest.mark.parametrize("name", ["Bad", "a b", "a,b", "", None, ["x"], {"x": 1}])
def test_bad_names_in_any_position_are_refused(field: str, name: object) -> None:
    assert reason(**{field: name}) == "bad_name"


@pytest.mark.parametrize("ts_ms", [1.5, "1", True, None])
def test_ts_ms_must_be_an_integer(ts_ms: object) -> None:
    assert reason(ts_ms=ts_ms) == "bad_timestamp"


def test_flags_are_kept_as_a_tuple_of_names() -> None:
    assert reading(flags=["suspect_humidity"]).flags == ("suspect_humidity",)
    assert reading(flags=[]).flags == ()


@pytest.mark.parametrize("flags", [None, "suspect", ["Bad flag"], [1], {"a": 1}, ""])
def test_bad_flags_are_refused(flags: object) -> None:
    assert reason(flags=flags) == "bad_flags"


def test_units_are_checked_through_the_catalogue() -> None:
    assert reading(unit="µg/m³").unit == "ug/m3"
    assert reason(unit="mg/m3") == "unit_mismatch"
    assert reason(metric="wind", unit=None) == "bad_unit"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-26T22:05:00.123Z", TS),
    ("2026-11-26t22:05:00.123Z", TS),
    ("2026-11-27T00:05:00.123+02:00", TS),
    ("2026-11-26T17:05:00.123-05:00", TS),
    ("2026-11-26T22:05:00Z", TS - 123),
    ("2026-11-26T22:05:00.123456Z", TS),  # sub-millisecond digits truncate
])
def test_parse_ts_converts_offsets_to_utc_milliseconds(text: str, expected: int) -> None:
    assert parse_ts(text) == expected


@pytest.mark.parametrize("text", [
    "2026-11-26T22:05:00.123",  # no offset: local time of whom?
    "2026-11-26",
    "2026-11-26 22:05:00Z",
    "22:05:00Z",
    "yesterday at noon",
    "2026-13-26T22:05:00Z",
    "2026-11-26T25:05:00Z",
    "",
    1795730700123,
    None,
])
def test_parse_ts_refuses_anything_but_rfc3339_with_an_offset(text: object) -> None:
    with pytest.raises(BadReading) as err:
        parse_ts(text)
    assert err.value.reason == "bad_timestamp"


@pytest.mark.parametrize("ts_ms", [0, 1, TS, TS + 999, now_ms()])
def test_format_then_parse_keeps_milliseconds(ts_ms: int) -> None:
    text = format_ts(ts_ms)
    assert text.endswith("Z") and len(text) == 24
    assert parse_ts(text) == ts_ms
