"""Messages: HELLO and version rules, readings, answers, errors."""

import pytest

from firmware_bridge.errors import ProtocolError, UnsupportedProtocol
from firmware_bridge.frame import Frame, FrameDecoder
from firmware_bridge.messages import (
    Ack,
    Channel,
    DeviceError,
    Hello,
    Readings,
    encode_error,
    encode_hello,
    encode_readings,
    format_fixed,
    format_number,
    parse_message,
)

CHANNELS = (Channel("a0", "voltage", "V"), Channel("ds18b20", "temperature", "degC"))


def _decode(line: bytes) -> Frame:
    [frame] = FrameDecoder().feed(line)
    assert isinstance(frame, Frame), frame
    return frame


def _hello(protocol: str = "1.0", **extra: str) -> Frame:
    fields = {"t": "10", "proto": protocol, "dev": "lab-uno-1", "fw": "2.1.0",
              "ch": "a0:voltage:V,ds18b20:temperature:degC", **extra}
    return Frame(0, "HELLO", fields)


def test_hello_announces_device_firmware_and_channels() -> None:
    line = encode_hello(0, 1523, "lab-uno-1", "1.0.0", CHANNELS, interval_ms=5000)
    hello = parse_message(_decode(line))
    assert hello == Hello(0, 1523, (1, 0), "lab-uno-1", "1.0.0", CHANNELS, 5000, None)


def test_newer_minor_version_is_accepted_and_its_new_fields_ignored() -> None:
    hello = parse_message(_hello("1.7", board="rp2040", crc32="yes"))
    assert isinstance(hello, Hello) and hello.protocol == (1, 7)


@pytest.mark.parametrize("protocol", ["2.0", "10.3"])
def test_newer_major_version_is_refused_with_advice(protocol: str) -> None:
    with pytest.raises(UnsupportedProtocol) as caught:
        parse_message(_hello(protocol))
    message = str(caught.value)
    assert f"protocol {protocol}" in message and "1.x" in message
    assert "lab-uno-1" in message and "upgrade fabcity" in message


def test_pre_release_major_zero_is_refused() -> None:
    with pytest.raises(UnsupportedProtocol, match=r"protocol 0\.9"):
        parse_message(_hello("0.9"))


@pytest.mark.parametrize(("field", "value", "match"), [
    ("proto", "one", "no valid proto"),
    ("dev", "Lab Uno", "invalid device id"),
    ("ch", "a0:voltage", "sensor:metric:unit"),
    ("ch", "A0:voltage:V", "invalid sensor"),
    ("ch", "ds18b20:temperature:K", "measured in 'degC'"),
    ("ch", "x:" + "m" * 33 + ":V", "invalid metric"),
])
def test_hello_that_would_make_invalid_readings_is_refused(field: str, value: str,
                                                           match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_message(_hello(**{field: value}))


def test_channel_units_come_back_canonical() -> None:
    hello = parse_message(_hello(ch="t:temperature:C,p:pm2_5:ug/m3"))
    assert isinstance(hello, Hello)
    assert [c.unit for c in hello.channels] == ["degC", "ug/m3"]


def test_readings_map_channel_indices_to_values_and_ignore_unknown_fields() -> None:
    frame = _decode(encode_readings(5, 6523, {0: "0.512", 2: format_fixed(215000, 4)}))
    message = parse_message(Frame(frame.seq, frame.kind, {**frame.fields, "q": "x"}))
    assert message == Readings(5, 6523, {0: 0.512, 2: 21.5})


@pytest.mark.parametrize("value", ["nan", "inf", "1e999", "0x10", "1.", "+1"])
def test_reading_value_must_be_a_finite_decimal(value: str) -> None:
    with pytest.raises(ProtocolError, match="bad value"):
        parse_message(Frame(1, "R", {"t": "1", "0": value}))


def test_uptime_is_required_and_32_bit() -> None:
    with pytest.raises(ProtocolError, match="missing field 't'"):
        parse_message(Frame(1, "R", {"0": "1"}))
    with pytest.raises(ProtocolError, match="bad t="):
        parse_message(Frame(1, "R", {"t": "4294967296"}))


def test_ack_and_error_frames() -> None:
    ack = parse_message(Frame(3, "ACK", {"t": "9", "ref": "4", "ms": "1000"}))
    assert ack == Ack(3, 9, 4, {"ms": "1000"})
    error = parse_message(_decode(encode_error(6, 12200, "sensor_fault", channel=2)))
    assert error == DeviceError(6, 12200, "sensor_fault", None, 2)


def test_unknown_frame_kind_is_not_an_error() -> None:
    assert parse_message(Frame(1, "STATS", {"t": "1", "heap": "2048"})) is None


@pytest.mark.parametrize(("mantissa", "decimals", "text"), [
    (2150, 2, "21.50"), (-5, 2, "-0.05"), (0, 3, "0.000"), (7, 0, "7"),
    (2147483647, 3, "2147483.647"), (-2147483648, 0, "-2147483648"),
])
def test_fixed_point_formatting_matches_the_c_module(mantissa: int, decimals: int,
                                                      text: str) -> None:
    assert format_fixed(mantissa, decimals) == text


def test_number_formatting_refuses_non_finite_values() -> None:
    assert format_number(1.5) == "1.5" and format_number(3) == "3"
    with pytest.raises(ProtocolError):
        format_number(float("nan"))


@pytest.mark.parametrize(("listed", "repeated"), [
    ("a0:voltage:V,a0:voltage:V", "a0:voltage twice (channels 0 and 1)"),
    ("p:rate:Hz,a1:voltage:V,p:rate:kHz", "p:rate twice (channels 0 and 2)"),
])
def test_hello_repeating_a_channel_is_refused_naming_it(listed: str, repeated: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_message(_hello(ch=listed))
    assert f"device 'lab-uno-1' announces channel {repeated}" in str(refused.value)


def test_one_metric_on_two_sensors_is_not_a_repeat() -> None:
    hello = parse_message(_hello(ch="a0:voltage:V,a1:voltage:V"))
    assert isinstance(hello, Hello) and len(hello.channels) == 2
