"""The portable C module, compiled with gcc: byte-identical to the Python side both ways."""

import subprocess
from pathlib import Path

import pytest

from firmware_bridge.crc import crc16
from firmware_bridge.frame import Frame, FrameDecoder, Rejected, encode_frame
from tests.firmware_bridge.helpers import FIRMWARE_DIR, build_arduino_sketch, python_vectors


def test_c_encoder_output_is_byte_identical_to_the_python_encoder(c_simulator: Path) -> None:
    c_output = subprocess.run([c_simulator, "--vectors"], capture_output=True, check=True).stdout
    assert c_output == python_vectors()


def test_python_decoder_reads_every_c_frame(c_simulator: Path) -> None:
    c_output = subprocess.run([c_simulator, "--vectors"], capture_output=True, check=True).stdout
    items = FrameDecoder().feed(c_output)
    assert all(isinstance(i, Frame) for i in items) and len(items) == 9
    assert [i.seq for i in items if isinstance(i, Frame)][-2:] == [65535, 0]


def c_decode(c_simulator: Path, stream: bytes) -> list[str]:
    result = subprocess.run([c_simulator, "--decode"], input=stream, capture_output=True,
                            check=True)
    return result.stdout.decode().splitlines()


def python_view(items: list[Frame | Rejected]) -> list[str]:
    """The Python decoder's results in the C program's output format."""
    lines = []
    for item in items:
        if isinstance(item, Frame):
            fields = "".join(f" {k}={v}" for k, v in item.fields.items())
            lines.append(f"FRAME {item.seq} {item.kind}{fields}")
        elif item.reason in ("bad_checksum", "malformed", "overlong"):
            lines.append(item.reason.upper())
    return lines


def test_c_decoder_reads_python_commands(c_simulator: Path) -> None:
    stream = b"".join([
        encode_frame(0, "HELLO"),
        encode_frame(1, "PING"),
        encode_frame(2, "INTERVAL", {"ms": 2500}),
        encode_frame(65535, "IDENTIFY", {"s": 10}),
    ])
    assert c_decode(c_simulator, stream) == [
        "FRAME 0 HELLO", "FRAME 1 PING", "FRAME 2 INTERVAL ms=2500", "FRAME 65535 IDENTIFY s=10",
    ]


def test_both_decoders_agree_on_a_stream_with_noise_and_damage(c_simulator: Path) -> None:
    good = encode_frame(9, "R", {"t": 77, "0": "1.25"})
    damaged = bytearray(encode_frame(10, "R", {"t": 78, "0": "1.30"}))
    damaged[8] ^= 0x04
    stream = b"".join([
        b"\x00\xffboot banner\r\n",
        python_vectors(),
        b"$11 R t=79 0=1.2",  # truncated by the next frame
        good,
        bytes(damaged),
        b"$12 R t=80\r\n",  # no checksum
        b"$1 r t=1*%04X\r\n" % crc16(b"1 r t=1"),  # lower-case kind
        b"$" + b"9" * 1100 + b"\r\n",
        encode_frame(13, "PING"),
    ])
    python_lines = python_view(FrameDecoder().feed(stream))
    assert c_decode(c_simulator, stream) == python_lines
    assert python_lines.count("BAD_CHECKSUM") == 1
    assert python_lines.count("MALFORMED") == 2
    assert python_lines.count("OVERLONG") == 1


@pytest.mark.parametrize("flags", [["-std=c99"], ["-std=c11", "-DFC_MAX_LINE_BYTES=64"]])
def test_module_compiles_cleanly_with_strict_warnings(tmp_path: Path, flags: list[str]) -> None:
    result = subprocess.run(
        ["gcc", *flags, "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Werror", "-c",
         str(FIRMWARE_DIR / "fabcity_proto.c"), "-o", str(tmp_path / "proto.o")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def test_arduino_sketch_speaks_the_protocol_on_stub_hardware(tmp_path: Path) -> None:
    """The sketch, built for the host against a stub Arduino core, answers and reports."""
    exe = build_arduino_sketch(tmp_path)
    commands = (encode_frame(0, "PING") + encode_frame(1, "INTERVAL", {"ms": 1000})
                + encode_frame(2, "IDENTIFY", {"s": 2}) + encode_frame(3, "HELLO"))
    output = subprocess.run([exe, "8000"], input=commands, capture_output=True,
                            check=True).stdout
    frames = FrameDecoder().feed(output)
    assert all(isinstance(f, Frame) for f in frames), frames
    kinds = [(f.kind, f.fields.get("ref")) for f in frames if isinstance(f, Frame)]
    assert kinds[0] == ("HELLO", None)
    assert [k for k in kinds if k[0] != "R"][1:] == [
        ("ACK", "0"), ("ACK", "1"), ("ACK", "2"), ("HELLO", "3")]
    readings = [f for f in frames if isinstance(f, Frame) and f.kind == "R"]
    assert len(readings) == 8  # INTERVAL at 1 s: a report every second from 1 s to 8 s
    assert readings[-1].fields == {"t": readings[-1].fields["t"], "0": "0.000", "1": "2.502",
                                   "2": "5.000", "3": "0.488", "4": "21.5000"}
    hello = frames[0]
    assert isinstance(hello, Frame) and hello.fields["ch"].count(",") == 4
