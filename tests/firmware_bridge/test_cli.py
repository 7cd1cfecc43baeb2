"""``fabcity bridge monitor`` and ``fabcity bridge send`` against a simulated device."""

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fabcity.cli import main
from firmware_bridge.frame import encode_frame
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
    (["identify", "0"], "identify takes VALUE in seconds (1..3600), got '0'"),
    (["identify", "3601"], "identify takes VALUE in seconds (1..3600), got '3601'"),
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


def test_monitor_does_not_report_a_frame_of_an_unknown_kind_as_lost(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    later(lambda: firmware.send(lambda seq, t: encode_frame(seq, "STAT", {"t": t, "heap": 2})))
    assert main(["bridge", "monitor", str(virtual_port.path), "--duration-s", "0.4"]) == 0
    out = capsys.readouterr().out
    assert " STAT  t=" in out and " heap=2  (unknown kind)" in out
    assert "lost (sequence gap)" not in out
    assert "lost 0 in 0 gaps" in out.splitlines()[-1]
    assert "unknown kinds 1 |" in out.splitlines()[-1]


def later(action: Callable[[], None], delay_s: float = 0.1) -> None:
    """Act on the device once the monitor has opened the port (opening flushes its input)."""
    def run() -> None:
        time.sleep(delay_s)
        action()

    threading.Thread(target=run, daemon=True).start()


NOISE = b"\x00\x13\x07boot\x1b[2J\x7f\\\xfe\r\n"


def test_monitor_escapes_every_control_byte_of_line_noise(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    later(lambda: firmware.inject(NOISE + b"\x11$5 R t=\x01*0000\r\n"))  # XOFF, bad frame
    assert main(["bridge", "monitor", str(virtual_port.path), "--duration-s", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "!! noise: \\x00\\x13\\x07boot\\x1b[2J\\x7f\\\\\\xfe\n" in out
    assert "!! bad_checksum" in out and "$5 R t=\\x01*0000" in out
    assert all(c == "\n" or " " <= c <= "~" for c in out), "a raw control byte reached stdout"


def test_monitor_raw_escapes_control_bytes_too(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    later(lambda: firmware.inject(NOISE))
    assert main(["bridge", "monitor", str(virtual_port.path), "--raw", "--duration-s", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "\\x00\\x13\\x07boot\\x1b[2J\\x7f\\\\\\xfe\n" in out
    assert all(c == "\n" or " " <= c <= "~" for c in out)


def test_monitor_json_prints_one_object_per_line_and_a_final_summary(
    firmware: SimulatedFirmware, virtual_port: VirtualPort, capsys: pytest.CaptureFixture[str]
) -> None:
    def damage() -> None:
        firmware.inject(NOISE)
        firmware.skip(2)

    later(damage)
    assert main(["bridge", "monitor", str(virtual_port.path), "--json", "--duration-s", "0.5"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    types = [line["type"] for line in lines]
    assert types[-1] == "summary" and types.count("summary") == 1
    assert {"frame", "noise", "lost", "connected"} <= set(types)
    frame = next(line for line in lines if line["type"] == "frame" and line["kind"] == "R")
    raw = bytes.fromhex(frame["raw_hex"])
    assert raw.startswith(b"$%d R " % frame["seq"]) and frame["fields"]["t"].isdigit()
    assert frame["ts"].endswith("Z") and frame["received"].endswith("Z")
    noise = next(line for line in lines if line["type"] == "noise")
    assert bytes.fromhex(noise["raw_hex"]) == NOISE.rstrip(b"\n")
    assert next(line for line in lines if line["type"] == "lost")["frames"] == 2
    summary = lines[-1]
    assert summary["ended"] == "duration" and summary["frames"] >= 5
    assert summary["lost_frames"] == 2 and summary["noise_bytes"] == len(NOISE)
    for counter in ("bad_checksum", "malformed", "truncated", "unknown_kinds", "reconnects"):
        assert summary[counter] == 0


def test_monitor_json_and_raw_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bridge", "monitor", "/dev/ttyACM0", "--json", "--raw"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_monitor_help_documents_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bridge", "monitor", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--json" in out and "'summary'" in out and "raw_hex" in out
