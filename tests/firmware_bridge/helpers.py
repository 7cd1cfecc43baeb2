"""Helpers shared by the bridge and firmware-driver tests."""

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import firmware_bridge

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


def wait_until(predicate: Callable[[], object], timeout_s: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` until it is truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")
