"""IDENTIFY's ``s`` range (1..3600 s, default 5) is the same in every reference firmware."""

import importlib.util
import socket
import subprocess
from pathlib import Path

from firmware_bridge.frame import Frame, FrameDecoder, encode_frame
from firmware_bridge.messages import DEFAULT_IDENTIFY_S, MAX_IDENTIFY_S, MIN_IDENTIFY_S
from firmware_bridge.simulator import SimulatedFirmware
from tests.firmware_bridge.helpers import FIRMWARE_DIR, build_arduino_sketch

#: (value of s, or None for none) -> the answer every firmware must give.
CASES: list[tuple[str | None, tuple[str, dict[str, str]]]] = [
    (None, ("ACK", {"s": "5"})),
    ("0", ("ERR", {"code": "bad_arg"})),
    ("1", ("ACK", {"s": "1"})),
    ("3600", ("ACK", {"s": "3600"})),
    ("3601", ("ERR", {"code": "bad_arg"})),
    ("99999999999", ("ERR", {"code": "bad_arg"})),
    ("5s", ("ERR", {"code": "bad_arg"})),
]
EXPECTED = [answer for _value, answer in CASES]


def commands() -> bytes:
    return b"".join(encode_frame(seq, "IDENTIFY", {} if value is None else {"s": value})
                    for seq, (value, _answer) in enumerate(CASES))


def answers(output: bytes) -> list[tuple[str, dict[str, str]]]:
    """The device's answers to CASES, without their uptime and ref (checked to be in order)."""
    frames = [f for f in FrameDecoder().feed(output) if isinstance(f, Frame)]
    replies = [f for f in frames if f.kind in ("ACK", "ERR")]
    assert [int(f.fields["ref"]) for f in replies] == list(range(len(CASES)))
    return [(f.kind, {k: v for k, v in f.fields.items() if k not in ("t", "ref")})
            for f in replies]


def test_host_constants_are_the_documented_range() -> None:
    assert (MIN_IDENTIFY_S, MAX_IDENTIFY_S, DEFAULT_IDENTIFY_S) == (1, 3600, 5)
    header = (FIRMWARE_DIR / "fabcity_proto.h").read_text()
    for line in ("FC_MIN_IDENTIFY_S 1u", "FC_MAX_IDENTIFY_S 3600u", "FC_DEFAULT_IDENTIFY_S 5u"):
        assert f"#define {line}" in header


def test_c_simulator_enforces_the_range(c_simulator: Path) -> None:
    output = subprocess.run([c_simulator, "--interval-ms", "100000"], input=commands(),
                            capture_output=True, check=True, timeout=10).stdout
    assert answers(output) == EXPECTED


def test_arduino_sketch_enforces_the_range(tmp_path: Path) -> None:
    exe = build_arduino_sketch(tmp_path)
    output = subprocess.run([exe, "1500"], input=commands(), capture_output=True, check=True,
                            timeout=10).stdout
    assert answers(output) == EXPECTED


def test_micropython_module_enforces_the_range() -> None:
    spec = importlib.util.spec_from_file_location(
        "fabcity_proto_mp", FIRMWARE_DIR / "micropython" / "fabcity_proto.py")
    assert spec is not None and spec.loader is not None
    proto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(proto)
    seen = []
    for value, _answer in CASES:
        seconds = proto.identify_seconds({} if value is None else {"s": value})
        seen.append(("ERR", {"code": "bad_arg"}) if seconds is None
                    else ("ACK", {"s": str(seconds)}))
    assert seen == EXPECTED
    main = (FIRMWARE_DIR / "micropython" / "main.py").read_text()
    assert "seconds = identify_seconds(fields)" in main


def test_python_simulator_enforces_the_range() -> None:
    host, device_end = socket.socketpair()
    device = SimulatedFirmware(device_end.fileno(), interval_ms=100_000).start()
    try:
        host.sendall(commands())
        host.settimeout(5)
        output = b""
        while output.count(b"ref=") < len(CASES):
            output += host.recv(4096)
    finally:
        device.stop()
        host.close()
        device_end.close()
    assert answers(output) == EXPECTED
