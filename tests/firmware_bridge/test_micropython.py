"""The MicroPython protocol module (run here under CPython) matches the host byte for byte."""

import importlib.util
from types import ModuleType

import pytest

from firmware_bridge.frame import Frame, FrameDecoder, encode_frame
from firmware_bridge.messages import format_fixed
from tests.firmware_bridge.helpers import FIRMWARE_DIR, python_vectors

MICROPYTHON_DIR = FIRMWARE_DIR / "micropython"


@pytest.fixture(scope="module")
def proto() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fabcity_proto_mp",
                                                  MICROPYTHON_DIR / "fabcity_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writer_output_is_byte_identical_to_the_host_encoder(proto: ModuleType) -> None:
    out = bytearray()
    w = proto.Writer(out.extend)
    channels = [("a0", "voltage", "V"), ("a1", "voltage", "V"),
                ("ds18b20", "temperature", "degC")]
    f = proto.fixed
    w.hello(1523, "lab-uno-1", "1.0.0", channels, 5000)
    w.readings(6523, [(0, f(512, 3)), (1, f(3300, 3)), (2, f(215000, 4))])
    w.readings(11523, [(0, f(0, 3)), (2, f(-5, 2))])
    w.ack(12000, 7)
    w.ack(12100, 8, [("ms", 1000)])
    w.error(12200, "sensor_fault", channel=2)
    w.error(12300, "unknown_command", ref=9)
    w.skip(65535 - w.seq)
    w.readings(4294967295, [(0, f(2147483647, 3))])
    w.readings(0, [(0, f(-2147483648, 0))])
    assert bytes(out) == python_vectors()


@pytest.mark.parametrize(("mantissa", "decimals"), [(2150, 2), (-5, 2), (0, 3), (7, 0),
                                                     (-120, 1), (99, 4)])
def test_fixed_point_text_matches_the_host(proto: ModuleType, mantissa: int,
                                           decimals: int) -> None:
    assert proto.fixed(mantissa, decimals) == format_fixed(mantissa, decimals)


def test_reader_decodes_host_commands_and_flags_damage(proto: ModuleType) -> None:
    damaged = bytearray(encode_frame(3, "PING"))
    damaged[1] ^= 0x01
    stream = (b"\x00noise" + encode_frame(0, "HELLO") + b"$1 PI"
              + encode_frame(2, "INTERVAL", {"ms": 2500}) + bytes(damaged)
              + b"$4 PING\r\n" + b"$" + b"x" * 200 + b"\n")
    results = proto.Reader().feed(stream)
    assert results == [
        ("frame", (0, "HELLO", {})),
        ("frame", (2, "INTERVAL", {"ms": "2500"})),
        ("bad_checksum", None),
        ("malformed", None),
        ("overlong", None),
    ]


def test_host_decoder_reads_what_the_micropython_writer_writes(proto: ModuleType) -> None:
    out = bytearray()
    proto.Writer(out.extend).readings(42, [(0, proto.fixed(-1234, 2))])
    [frame] = FrameDecoder().feed(bytes(out))
    assert isinstance(frame, Frame) and frame.fields == {"t": "42", "0": "-12.34"}


def test_pico_main_program_compiles() -> None:
    source = (MICROPYTHON_DIR / "main.py").read_text()
    compile(source, "main.py", "exec")
    assert "from fabcity_proto import" in source
