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


# RFC 3339 exactly (section 5.6), with the examples of its section 5.8.

@pytest.mark.parametrize(("text", "expected"), [
    ("1985-04-12T23:20:50.52Z", "1985-04-12T23:20:50.520Z"),
    ("1996-12-19T16:39:57-08:00", "1996-12-20T00:39:57.000Z"),
    ("1990-12-31T23:59:60Z", "1990-12-31T23:59:59.999Z"),
    ("1990-12-31T15:59:60-08:00", "1990-12-31T23:59:59.999Z"),
    ("1937-01-01T12:00:27.87+00:20", "1937-01-01T11:40:27.870Z"),
    ("2026-11-26t22:05:00.123z", "2026-11-26T22:05:00.123Z"),
    ("2026-11-26T22:05:00.123456789Z", "2026-11-26T22:05:00.123Z"),
])
def test_rfc3339_section_5_8_examples_parse(text: str, expected: str) -> None:
    assert format_ts(parse_ts(text)) == expected


@pytest.mark.parametrize("text", [
    "2026-W48-5T00:00:01Z",  # an ISO 8601 week date
    "2026-11-26T13:56:33,5Z",  # a comma before the fraction
    "2026-11-26T13:56+00:00",  # no seconds
    "2026-11-26T13:56:33+0000",  # an offset without its colon
    "2026-11-26T13:56:33+00",  # an offset without minutes
    "2026-11-26T13:56:33.Z",  # a point without digits
    "20261126T135633Z",  # basic format
    "2026-11-26T24:00:00Z",
    "2026-11-26T13:60:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-26T12:00:60Z",  # a leap second ends a UTC day
    "2026-11-26T13:56:33.123Z ",
    "\uff12\uff10\uff12\uff16-11-26T13:56:33Z",  # fullwidth digits
])
def test_timestamps_outside_rfc3339_are_refused(text: str) -> None:
    with pytest.raises(BadReading) as err:
        parse_ts(text)
    assert err.value.reason == "bad_timestamp"


def test_the_cached_fast_path_still_checks_every_character() -> None:
    assert parse_ts("2026-11-26T22:05:00.123Z") == TS  # caches the minute
    for text in ("2026-11-26T22:05:0x.123Z", "2026-11-26T22:05:00,123Z",
                 "2026-11-26T22:05:00.12xZ", "2026-11-26T22:05:60.123Z"):
        with pytest.raises(BadReading):
            parse_ts(text)
    assert parse_ts("2026-11-26T22:05:59.999Z") == TS - 123 + 59_999


def test_a_megabyte_timestamp_is_refused_with_a_short_message() -> None:
    with pytest.raises(BadReading) as err:
        parse_ts("2026" * 250_000)
    assert len(str(err.value)) < 200


def test_the_fast_path_keeps_offsets_and_longer_fractions_apart() -> None:
    assert parse_ts("2026-11-27T00:05:00.123+02:00") == TS
    assert parse_ts("2026-11-27T00:05:07.456+02:00") == TS + 7_333
    assert parse_ts("2026-11-27T00:05:07.456-02:00") == TS + 7_333 + 4 * 3_600_000
    assert parse_ts("2026-11-27T00:05:07.4567+02:00") == TS + 7_333
    assert parse_ts("2026-11-26T22:05:00.1234Z") == TS
    with pytest.raises(BadReading):
        parse_ts("2026-11-27T00:05:07.456+02:0x")
