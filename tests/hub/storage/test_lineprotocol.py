"""Line protocol for readings and rollup rows: escaping, floats, flags, odd units."""

import math

import pytest

from fabcity.errors import ReadingsRefused
from fabcity.reading import Reading
from hub.storage.base import BucketStats
from hub.storage.lineprotocol import (
    escape_field_string,
    escape_measurement,
    escape_tag,
    reading_bodies,
    reading_lines,
    rollup_lines,
)


def unchecked(unit: str) -> Reading:
    """A reading with a unit the wire contract would refuse: the escaping is a second wall."""
    return tuple.__new__(Reading, ("s", "d", "x", "custom_metric", 1.0, 9, unit, ()))


def test_a_plain_reading_is_one_line_with_a_float_value_and_ms_timestamp() -> None:
    reading = Reading("lab", "pi-1", "sds011", "pm2_5", 12, 1_700_000_000_123, "ug/m3")
    assert reading_lines([reading]) == [
        b"pm2_5,site=lab,device=pi-1,sensor=sds011,unit=ug/m3 value=12.0 1700000000123"]


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1.0"), (0.0, "0.0"), (-3.0, "-3.0"), (0.1, "0.1"), (1e20, "1e+20"),
    (2.5e-7, "2.5e-07"), (123456789012345.0, "123456789012345.0"),
])
def test_values_are_always_written_as_floats(value: float, text: str) -> None:
    reading = Reading("s", "d", "x", "power", value, 5, "W")
    line = f"power,site=s,device=d,sensor=x,unit=W value={text} 5"
    assert reading_lines([reading])[0] == line.encode()


def test_flags_become_a_comma_joined_string_field() -> None:
    reading = Reading("s", "d", "x", "humidity", 40.5, 7, "%", ("suspect_humidity", "clipped"))
    assert reading_lines([reading]) == [
        b'humidity,site=s,device=d,sensor=x,unit=% value=40.5,'
        b'flags="suspect_humidity,clipped" 7']


@pytest.mark.parametrize(("unit", "tag"), [
    ("ug/m3", "ug/m3"), ("°C", "°C"), ("%", "%"), ("kg CO2e", "kg\\ CO2e"),
    ("a,b=c", "a\\,b\\=c"), ('"quoted"', '"quoted"'), ("m³/h", "m³/h"),
])
def test_units_with_odd_characters_are_escaped_as_tag_values(unit: str, tag: str) -> None:
    assert reading_lines([unchecked(unit)])[0] == (
        f"custom_metric,site=s,device=d,sensor=x,unit={tag} value=1.0 9".encode())


@pytest.mark.parametrize("unit", ["a\\b", "line\nbreak", "end\\"])
def test_units_line_protocol_cannot_carry_are_refused(unit: str) -> None:
    with pytest.raises(ReadingsRefused, match="cannot be stored"):
        reading_lines([unchecked(unit)])


def test_escaping_rules_per_element() -> None:
    assert escape_measurement("a b,c=d") == "a\\ b\\,c=d"
    assert escape_tag("a b,c=d") == "a\\ b\\,c\\=d"
    assert escape_field_string('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'


def test_bodies_hold_at_most_batch_size_lines_and_match_the_lines() -> None:
    readings = [Reading("s", "d", "x", "power", float(i), i, "W") for i in range(12)]
    bodies = reading_bodies(readings, batch_size=5)
    assert [body.count(b"\n") + 1 for body in bodies] == [5, 5, 2]
    assert b"\n".join(bodies).split(b"\n") == reading_lines(readings)


def test_rollup_rows_carry_every_statistic_as_a_float_at_the_bucket_start() -> None:
    row = BucketStats("s", "d", "x", "energy", "Wh", 60_000, 3, 6.0, 1.0, 3.0, 1.0, 3.0, 2.0)
    assert rollup_lines([row]) == [
        b"energy,site=s,device=d,sensor=x,unit=Wh count=3.0,sum=6.0,min=1.0,max=3.0,"
        b"first=1.0,last=3.0,increase=2.0 60000"]


def test_a_missing_unit_leaves_the_tag_out() -> None:
    row = BucketStats("s", "d", "x", "energy", None, 0, 1, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0)
    assert rollup_lines([row])[0].startswith(b"energy,site=s,device=d,sensor=x count=")


def test_rollup_rows_leave_out_a_sum_or_rise_beyond_the_float_range() -> None:
    row = BucketStats("s", "d", "x", "energy", "Wh", 0, 2, math.inf, -1.7e308, 1.7e308,
                      -1.7e308, 1.7e308, math.nan)
    assert rollup_lines([row]) == [
        b"energy,site=s,device=d,sensor=x,unit=Wh count=2.0,min=-1.7e+308,max=1.7e+308,"
        b"first=-1.7e+308,last=1.7e+308 0"]
