"""JSON rows written straight from readings equal the dicts orjson used to encode."""

import orjson
import pytest

from fabcity.reading import Reading
from hub.api.serialise import bucket_values_json, reading_dicts, readings_json, series_json

DAY_MS = 86_400_000


def _encoded_as_dicts(readings: list[Reading]) -> bytes:
    return orjson.dumps(reading_dicts(readings))


def test_empty() -> None:
    assert readings_json([]) == b"[]" == _encoded_as_dicts([])


@pytest.mark.parametrize("ts_ms", [
    0, 1, 999, 59_999, 60_000, DAY_MS - 1, DAY_MS, 1_794_960_123_456,
    -1, -60_001, -DAY_MS - 1, -62_135_596_800_000, 253_402_300_799_999,
])
def test_timestamps_any_instant(ts_ms: int) -> None:
    readings = [Reading("s", "d", "air", "pm2_5", 1.5, ts_ms)]
    assert readings_json(readings) == _encoded_as_dicts(readings)


@pytest.mark.parametrize("value", [
    0.0, -0.0, 1.0, 0.1, -2.5, 1e16, 1.2345678901234567e-7, 1e-5, 123456789012345.6,
    1.7976931348623157e308, 5e-324, 12, 2**53 + 1,
])
def test_values_keep_every_digit(value: float) -> None:
    readings = [Reading("s", "d", "air", "pm2_5", value, 0),
                Reading("s", "d", "air", "pm2_5", -value, 1)]
    assert readings_json(readings) == _encoded_as_dicts(readings)


def test_series_units_and_flags_change_between_rows() -> None:
    readings = [
        Reading("fablab-bcn", "pi-laser", "air", "pm2_5", 3.25, 1_000, "ug/m3"),
        Reading("fablab-bcn", "pi-laser", "air", "pm2_5", 4.0, 61_000, "ug/m3",
                ("suspect_humidity",)),
        Reading("fablab-bcn", "pi-laser", "air", "temperature", 21.5, 61_000, "degC"),
        Reading._make(("fablab-bcn", "pi-laser", "door", "open", 1.0, 61_500, None, ())),
        Reading("street-12", "pi-air", "air", "pm2_5", 7.0, 3 * DAY_MS + 7, "ug/m3",
                ("a", "b_2")),
        Reading("street-12", "pi-air", "air", "pm2_5", 7.0, 3 * DAY_MS + 7, "µg/m³"),
    ]
    assert readings_json(readings) == _encoded_as_dicts(readings)
    assert orjson.loads(readings_json(readings))[1]["flags"] == ["suspect_humidity"]


def test_a_day_of_buckets() -> None:
    readings = [Reading(f"site-{s}", "dev", "air", "pm2_5", 10 + m % 17 / 3, m * 60_000)
                for s in range(3) for m in range(1440)]
    assert readings_json(readings) == _encoded_as_dicts(readings)


@pytest.mark.parametrize("ts_ms", [
    0, 1, 59_999, 60_000, DAY_MS - 1, DAY_MS, 1_794_960_123_456, -1, -60_001, -DAY_MS - 1,
    -62_135_596_800_000, 253_402_300_799_999,
])
def test_series_rows_as_readings(ts_ms: int) -> None:
    names = ("s", "d", "air", "pm2_5")
    step = -61_001 if ts_ms > 0 else 61_001  # within years 1..9999
    rows = [(ts_ms, 1.5, None), (ts_ms + step, -0.0, "a,b_2"), (ts_ms + 2 * step, 1e16, "x")]
    readings = [Reading(*names, value, ts, "ug/m3", tuple(flags.split(",")) if flags else ())
                for ts, value, flags in rows]
    assert series_json(names, "ug/m3", rows) == _encoded_as_dicts(readings)
    assert series_json(names, "ug/m3", []) == b"[]"


@pytest.mark.parametrize("ts_ms", [
    0, 60_000, DAY_MS, 1_794_960_000_000, -60_000, -DAY_MS, -62_135_596_800_000,
    253_402_300_740_000, 1_794_960_123_456,
])
def test_bucket_values_as_readings(ts_ms: int) -> None:
    names = {7: ("s", "d", "air", "pm2_5", "ug/m3"), -2: ("s", "d", "air", "pm10", None),
             3: ("t", "e", "x", "flow", "l")}
    step = -60_000 if ts_ms > 0 else 60_000  # within years 1..9999
    rows = [(7, ts_ms, 1.5), (7, ts_ms + step, -0.0), (-2, ts_ms, 1e16), (3, ts_ms, 5e-324),
            (3, ts_ms + 2 * step, 12.0)]
    readings = [Reading._make((*names[series][:4], value, start, names[series][4], ()))
                for series, start, value in rows]
    assert bucket_values_json(names, rows) == _encoded_as_dicts(readings)
    assert bucket_values_json(names, []) == b"[]"
