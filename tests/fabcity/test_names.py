"""Name charsets shared by topics and readings."""

import pytest

from fabcity.errors import BadReading
from fabcity.names import check_device, check_metric, check_sensor, check_site

# Outside both charsets: case, unicode, spaces and line-protocol / MQTT / SQL specials.
BAD_ANYWHERE = ["", "Air", "AIR", "a b", "a,b", "a=b", "a\nb", "a\"b", "a'b", "a/b", "a+b",
                "a#b", "a.b", "café", "a\x00b", "ä", " a", "a "]


@pytest.mark.parametrize("name", ["a", "fablab-bcn", "pi_4", "0site", "a" * 64, "9"])
def test_site_and_device_accept_lowercase_digits_dash_underscore(name: str) -> None:
    assert check_site(name) == name
    assert check_device(name) == name


@pytest.mark.parametrize("name", [*BAD_ANYWHERE, "-a", "_a", "a" * 65])
def test_site_and_device_refuse_names_outside_the_charset(name: str) -> None:
    for check in (check_site, check_device):
        with pytest.raises(BadReading) as err:
            check(name)
        assert err.value.reason == "bad_name"


@pytest.mark.parametrize("name", ["a", "pm2_5", "door_open", "x" + "1" * 63])
def test_sensor_and_metric_accept_snake_case(name: str) -> None:
    assert check_sensor(name) == name
    assert check_metric(name) == name


@pytest.mark.parametrize("name", [*BAD_ANYWHERE, "2pm", "_a", "pm-10", "a" * 65])
def test_sensor_and_metric_refuse_dash_leading_digit_and_65_chars(name: str) -> None:
    for check in (check_sensor, check_metric):
        with pytest.raises(BadReading) as err:
            check(name)
        assert err.value.reason == "bad_name"


@pytest.mark.parametrize("value", [None, 5, b"air", ["air"]])
def test_non_strings_are_bad_names(value: object) -> None:
    with pytest.raises(BadReading) as err:
        check_sensor(value)
    assert err.value.reason == "bad_name"


def test_error_message_names_the_field_and_the_rule() -> None:
    with pytest.raises(BadReading, match=r"invalid site 'Bad Site': must match"):
        check_site("Bad Site")
