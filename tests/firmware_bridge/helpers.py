"""Helpers shared by the bridge and firmware-driver tests."""

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import firmware_bridge
from firmware_bridge.messages import (
    Channel,
    encode_ack,
    encode_error,
    encode_hello,
    encode_readings,
    format_fixed,
)

FIRMWARE_DIR = Path(firmware_bridge.__file__).parent / "firmware"
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2"]
#: The host decoder's line limit, so both decoders classify long lines alike.
HOST_LINE_BYTES = 1024


def build_c_simulator(out_dir: Path) -> Path:
    """Compile firmware/host/fabcity_sim.c with fabcity_proto.c; return the executable."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (Debian package gcc; `make test` installs it)")
    exe = out_dir / "fabcity_sim"
    subprocess.run(
        [gcc, *C_FLAGS, f"-DFC_MAX_LINE_BYTES={HOST_LINE_BYTES}", f"-I{FIRMWARE_DIR}",
         str(FIRMWARE_DIR / "host" / "fabcity_sim.c"), str(FIRMWARE_DIR / "fabcity_proto.c"),
         "-o", str(exe)],
        check=True, capture_output=True, text=True,
    )
    return exe


def build_arduino_sketch(out_dir: Path) -> Path:
    """Build the Arduino sketch for the host against the stub core in arduino_stub/."""
    if shutil.which("g++") is None or shutil.which("gcc") is None:
        pytest.skip("gcc/g++ are not installed (Debian packages gcc, g++)")
    stub = Path(__file__).parent / "arduino_stub"
    sketch = FIRMWARE_DIR / "arduino" / "fabcity_bridge" / "fabcity_bridge.ino"
    exe = out_dir / "sketch"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c",
                    str(FIRMWARE_DIR / "fabcity_proto.c"), "-o", str(out_dir / "proto.o")],
                   check=True)
    build = subprocess.run(
        ["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", f"-I{stub}", f"-I{FIRMWARE_DIR}",
         "-include", "Arduino.h", "-x", "c++", str(sketch), "-x", "c++",
         str(stub / "stub_main.cpp"), "-x", "none", str(out_dir / "proto.o"), "-o", str(exe)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    return exe


def wait_until(predicate: Callable[[], object], timeout_s: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` until it is truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


CHANNELS = (
    Channel("a0", "voltage", "V"),
    Channel("a1", "voltage", "V"),
    Channel("ds18b20", "temperature", "degC"),
)


def python_vectors() -> bytes:
    """The frames ``fabcity_sim --vectors`` writes, built with the Python encoder."""
    return b"".join([
        encode_hello(0, 1523, "lab-uno-1", "1.0.0", CHANNELS, interval_ms=5000),
        encode_readings(1, 6523, {0: format_fixed(512, 3), 1: format_fixed(3300, 3),
                                  2: format_fixed(215000, 4)}),
        encode_readings(2, 11523, {0: format_fixed(0, 3), 2: format_fixed(-5, 2)}),
        encode_ack(3, 12000, 7),
        encode_ack(4, 12100, 8, {"ms": 1000}),
        encode_error(5, 12200, "sensor_fault", channel=2),
        encode_error(6, 12300, "unknown_command", ref=9),
        encode_readings(65535, 4294967295, {0: format_fixed(2147483647, 3)}),
        encode_readings(0, 0, {0: format_fixed(-2147483648, 0)}),
    ])
