"""``fabcity bridge monitor`` and ``fabcity bridge send`` against a simulated device."""

import threading
import time
from collections.abc import Iterator

import pytest

from fabcity.cli import main
from firmware_bridge.simulator import SimulatedFirmware, VirtualPort


@pytest.fixture
def firmware(virtual_port: VirtualPort) -> Iterator[SimulatedFirmware]:
    device = SimulatedFirmware(virtual_port.fd, interval_ms=20).start()
    yield device
    device.stop()


def test_monitor_shows_decoded_frames_and_counters(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    firmware.skip(2)
    firmware.inject(b"debug: hello from setup()\r\n$99 R t=1 0=1*0000\r\n")
    assert main(["bridge", "monitor", str(virtual_port.path), "--count", "6"]) == 0
    out = capsys.readouterr().out
    assert "-- connected: sim-py-1 firmware 1.0.0-sim, protocol 1.0" in out
    assert "a0:voltage=" in out and "ds18b20:temperature=" in out and " degC" in out
    counters = out.strip().splitlines()[-1]
    assert counters.startswith("-- frames ") and "bad checksum" in counters
    assert "lost" in counters and "gaps" in counters


def test_monitor_reports_bad_checksums_and_gaps(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    def damage_later() -> None:
        time.sleep(0.15)
        firmware.inject(b"$99 R t=1 0=1*0000\r\n")
        firmware.skip(2)

    threading.Thread(target=damage_later, daemon=True).start()
    assert main(["bridge", "monitor", str(virtual_port.path), "--duration-s", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "!! bad_checksum (checksum 0000 != " in out
    assert "!! 2 frame(s) lost (sequence gap)" in out
    assert "bad checksum 1 |" in out.splitlines()[-1]
    assert "lost 2 in 1 gaps" in out.splitlines()[-1]


def test_monitor_raw_prints_lines_as_received(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", "monitor", str(virtual_port.path), "--raw", "--count", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    frames = [line for line in lines if line.startswith("$")]
    assert len(frames) >= 3 and all("*" in line for line in frames)


def test_send_ping_prints_the_acknowledgement(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", "send", str(virtual_port.path), "ping"]) == 0
    assert capsys.readouterr().out.startswith("ACK from sim-py-1 in ")


def test_send_interval_changes_the_device(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", "send", str(virtual_port.path), "interval", "2500"]) == 0
    assert firmware.interval_ms == 2500
    assert capsys.readouterr().out.rstrip().endswith(": ms=2500")


def test_send_hello_lists_the_channels(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", "send", str(virtual_port.path), "hello"]) == 0
    out = capsys.readouterr().out
    assert "sim-py-1: firmware 1.0.0-sim, protocol 1.0" in out
    assert "  2: ds18b20 temperature [degC]" in out


@pytest.mark.parametrize(("args", "message"), [
    (["interval"], "interval needs VALUE, the reporting interval in ms"),
    (["interval", "fast"], "interval needs VALUE"),
    (["interval", "5"], "interval 5 ms out of range 100..86400000"),
    (["identify", "-1"], "identify takes VALUE in seconds"),
    (["ping", "3"], "ping takes no VALUE"),
])
def test_send_bad_value_is_a_precise_message(
    args: list[str], message: str, virtual_port: VirtualPort,
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", "send", str(virtual_port.path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fabcity: error: ") and message in err
    assert "Traceback" not in err


def test_send_to_a_missing_port_is_a_precise_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bridge", "send", "/dev/ttyNOPE9", "ping"]) == 2
    assert capsys.readouterr().err == (
        "fabcity: error: cannot open serial port /dev/ttyNOPE9: no such device "
        "(is it plugged in? try ls /dev/serial/by-id/)\n"
    )


def test_send_to_newer_firmware_explains_the_version_refusal(
    virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    device = SimulatedFirmware(virtual_port.fd, protocol="3.1").start()
    try:
        assert main(["bridge", "send", str(virtual_port.path), "ping"]) == 2
    finally:
        device.stop()
    err = capsys.readouterr().err
    assert "speaks firmware protocol 3.1, this host understands protocol 1.x" in err
    assert "Traceback" not in err


def test_monitor_exits_on_a_refused_protocol(
    virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    device = SimulatedFirmware(virtual_port.fd, protocol="2.0").start()
    try:
        assert main(["bridge", "monitor", str(virtual_port.path), "--duration-s", "3"]) == 2
    finally:
        device.stop()
    assert "speaks firmware protocol 2.0" in capsys.readouterr().err


def test_unknown_command_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bridge", "send", "/dev/ttyACM0", "reboot"])
    assert exited.value.code == 2
    assert "invalid choice: 'reboot'" in capsys.readouterr().err


def test_help_names_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bridge", "send", "--help"])
    out = capsys.readouterr().out
    for word in ("ping", "hello", "interval", "identify", "--timeout-s"):
        assert word in out
