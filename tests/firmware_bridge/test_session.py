"""A device session on a pty pair, against a simulated microcontroller in Python and in C."""

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabcity.reading import now_ms
from firmware_bridge.errors import (
    CommandRejected,
    CommandTimeout,
    DeviceUnavailable,
    ProtocolError,
    UnsupportedProtocol,
)
from firmware_bridge.frame import encode_frame
from firmware_bridge.messages import Ack, Channel, Readings
from firmware_bridge.session import Connected, DeviceSession, Disconnected, LinkEvent, Received
from firmware_bridge.simulator import SimulatedFirmware, VirtualPort
from tests.firmware_bridge.helpers import wait_until


class Recorder:
    """Collects a session's events from its reader thread."""

    def __init__(self) -> None:
        self.events: list[LinkEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: LinkEvent) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def readings(self) -> list[Received]:
        return [e for e in self.of(Received) if isinstance(e.message, Readings)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def session(virtual_port: VirtualPort, recorder: Recorder) -> Iterator[DeviceSession]:
    link = DeviceSession(str(virtual_port.path), on_event=recorder, handshake_timeout_s=2.0,
                         reconnect_interval_s=0.05,
                         after_handshake=[("INTERVAL", {"ms": 100})])
    yield link
    link.close()


@pytest.fixture
def firmware(virtual_port: VirtualPort) -> Iterator[SimulatedFirmware]:
    device = SimulatedFirmware(virtual_port.fd, interval_ms=20).start()
    yield device
    device.stop()


def test_handshake_learns_the_device_and_its_channels(
    firmware: SimulatedFirmware, session: DeviceSession, recorder: Recorder
) -> None:
    hello = session.open()
    assert hello is not None and hello.device == "sim-py-1" and hello.protocol == (1, 0)
    assert [c.label for c in hello.channels] == [
        "a0:voltage:V", "a1:voltage:V", "ds18b20:temperature:degC"]
    # The boot HELLO and the answer to the host's request may both arrive: either may be the
    # one in force when open() returns, but both describe the same device.
    connected = recorder.of(Connected)[0].hello
    assert (connected.device, connected.channels) == (hello.device, hello.channels)
    wait_until(lambda: firmware.interval_ms == 100, what="INTERVAL sent after the handshake")


def test_readings_carry_device_time_mapped_to_utc(
    firmware: SimulatedFirmware, session: DeviceSession, recorder: Recorder
) -> None:
    before = now_ms()
    session.open()
    wait_until(lambda: len(recorder.readings()) >= 5, what="5 readings")
    readings = recorder.readings()[:5]
    stamps = [r.ts_ms for r in readings]
    assert all(r.ts_ms is not None and before - 50 <= r.ts_ms <= r.received_ms
               for r in readings)
    assert stamps == sorted(stamps)
    message = readings[-1].message
    assert isinstance(message, Readings) and set(message.values) == {0, 1, 2}
    n = round(message.values[0] * 1000)  # a0 reports n mV on the n-th reading
    assert message.values[1] == pytest.approx(3.3 - n / 1000)


def test_commands_are_acknowledged_or_refused(
    firmware: SimulatedFirmware, session: DeviceSession
) -> None:
    session.open()
    assert isinstance(session.command("PING"), Ack)
    answer = session.command("INTERVAL", {"ms": 250})
    assert isinstance(answer, Ack) and answer.fields == {"ms": "250"}
    assert firmware.interval_ms == 250
    assert session.command("IDENTIFY", {"s": 3}).fields == {"s": "3"}  # type: ignore[union-attr]
    with pytest.raises(CommandRejected, match="bad_arg") as refused:
        session.command("INTERVAL", {"ms": 5})
    assert refused.value.code == "bad_arg"
    with pytest.raises(CommandRejected, match="unknown_command"):
        session.command("REBOOT")


def test_command_without_answer_times_out_after_a_retry(
    firmware: SimulatedFirmware, session: DeviceSession
) -> None:
    session.open()
    firmware.stop()
    count = len(firmware.commands)
    with pytest.raises(CommandTimeout, match=r"no answer to PING within 0\.1 s \(2 attempts\)"):
        session.command("PING", timeout_s=0.1, retries=1)
    assert len(firmware.commands) == count  # the stopped device read nothing


def test_noise_and_truncated_lines_are_counted_and_readings_keep_flowing(
    firmware: SimulatedFirmware, session: DeviceSession, recorder: Recorder
) -> None:
    session.open()
    wait_until(lambda: recorder.readings(), what="first reading")
    firmware.inject(b"\x00\xfe\xff line noise \x07\r\n")
    firmware.inject(b"$4242 R t=1 0=0.")  # cut short: the next frame follows at once
    firmware.inject(b"$4243 R t=2 0=1.0*0000\r\n")  # wrong checksum
    seen = len(recorder.readings())
    wait_until(lambda: len(recorder.readings()) >= seen + 5, what="readings after the noise")
    stats = session.stats
    assert stats.truncated == 1 and stats.bad_checksum == 1
    assert stats.noise_bytes >= len(b"\x00\xfe\xff line noise \x07\r")
    assert stats.lost_frames == 0


def test_sequence_gaps_are_counted_as_lost_frames(
    firmware: SimulatedFirmware, session: DeviceSession, recorder: Recorder
) -> None:
    session.open()
    wait_until(lambda: recorder.readings(), what="first reading")
    firmware.skip(3)
    seen = len(recorder.readings())
    wait_until(lambda: len(recorder.readings()) > seen + 1, what="a reading after the gap")
    firmware.skip(2)
    seen = len(recorder.readings())
    wait_until(lambda: len(recorder.readings()) > seen + 1, what="a reading after the gap")
    assert (session.stats.lost_frames, session.stats.gaps) == (5, 2)


def test_unplug_and_replug_reconnects_and_handshakes_again(
    virtual_port: VirtualPort, session: DeviceSession, recorder: Recorder
) -> None:
    first = SimulatedFirmware(virtual_port.fd, interval_ms=20).start()
    session.open()
    wait_until(lambda: recorder.readings(), what="first reading")
    first.stop()
    virtual_port.unplug()
    wait_until(lambda: recorder.of(Disconnected), what="the unplug to be noticed")
    assert not session.connected
    with pytest.raises(DeviceUnavailable):
        session.command("PING", timeout_s=0.1)

    second = SimulatedFirmware(virtual_port.plug(), device="sim-py-2", interval_ms=20).start()
    try:
        wait_until(lambda: len(recorder.of(Connected)) == 2, what="a second handshake")
        seen = len(recorder.readings())
        wait_until(lambda: len(recorder.readings()) >= seen + 3, what="readings after replug")
        assert recorder.of(Connected)[1].hello.device == "sim-py-2"
        assert recorder.readings()[-1].hello.device == "sim-py-2"  # type: ignore[union-attr]
        assert session.stats.reconnects == 1
        assert isinstance(session.command("PING"), Ack)
        wait_until(lambda: second.interval_ms == 100, what="INTERVAL again after replug")
    finally:
        second.stop()


def test_device_restart_is_not_counted_as_lost_frames(
    virtual_port: VirtualPort, session: DeviceSession, recorder: Recorder
) -> None:
    first = SimulatedFirmware(virtual_port.fd, interval_ms=20).start()
    session.open()
    wait_until(lambda: len(recorder.readings()) >= 3, what="readings")
    first.skip(500)
    first.stop()
    rebooted = SimulatedFirmware(virtual_port.fd, interval_ms=20).start()  # seq and uptime at 0
    try:
        wait_until(lambda: len(recorder.of(Connected)) == 2, what="the restart's HELLO")
        wait_until(lambda: rebooted.interval_ms == 100, what="settings sent again")
        assert session.stats.reboots == 1 and session.stats.lost_frames == 0
    finally:
        rebooted.stop()


def test_newer_protocol_major_version_is_refused_with_a_clear_message(
    virtual_port: VirtualPort, session: DeviceSession
) -> None:
    device = SimulatedFirmware(virtual_port.fd, protocol="2.0", firmware="9.0.0").start()
    try:
        with pytest.raises(UnsupportedProtocol) as refused:
            session.open()
    finally:
        device.stop()
    assert str(refused.value) == (
        "device 'sim-py-1' (firmware 9.0.0) speaks firmware protocol 2.0, this host "
        "understands protocol 1.x only: upgrade fabcity on this host (pip install -U fabcity) "
        "or flash firmware built for protocol 1.x"
    )
    assert not session.connected


def test_silent_port_fails_the_handshake_with_advice(virtual_port: VirtualPort) -> None:
    link = DeviceSession(str(virtual_port.path), handshake_timeout_s=0.3)
    with pytest.raises(DeviceUnavailable, match=r"no HELLO from the device within 0\.3 s"):
        link.open()
    assert not link.connected


def test_missing_port_is_reported_plainly(tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailable, match="ttyNONE: no such device"):
        DeviceSession(str(tmp_path / "ttyNONE")).open()


# ---- the C module on the wire --------------------------------------------------------------


@pytest.fixture
def c_device(virtual_port: VirtualPort, c_simulator: Path) -> Iterator[object]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([c_simulator, *args], stdin=virtual_port.fd,
                                   stdout=virtual_port.fd)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=5)


def test_c_firmware_handshakes_reports_and_answers_commands(
    c_device, session: DeviceSession, recorder: Recorder  # type: ignore[no-untyped-def]
) -> None:
    c_device("--device", "sim-c-1", "--interval-ms", "20")
    hello = session.open()
    assert hello is not None and hello.device == "sim-c-1" and len(hello.channels) == 3
    answer = session.command("INTERVAL", {"ms": 150})
    assert isinstance(answer, Ack) and answer.fields == {"ms": "150"}
    assert isinstance(session.command("PING"), Ack)
    with pytest.raises(CommandRejected, match="unknown_command"):
        session.command("REBOOT")
    wait_until(lambda: len(recorder.readings()) >= 2, what="readings from the C device")
    message = recorder.readings()[-1].message
    assert isinstance(message, Readings)
    n = round(message.values[0] * 1000)
    assert message.values[1] == pytest.approx(3.3 - n / 1000)
    assert message.values[2] == pytest.approx(21.5 + (n % 16) / 16)


def test_c_firmware_noise_and_dropped_frames_are_counted(
    c_device, session: DeviceSession, recorder: Recorder  # type: ignore[no-untyped-def]
) -> None:
    c_device("--interval-ms", "10", "--noise-every", "3", "--drop-every", "4")
    session.after_handshake = []
    session.open()
    wait_until(lambda: len(recorder.readings()) >= 24, what="24 readings")
    stats = session.stats
    assert stats.truncated >= 6 and stats.noise_bytes > 0
    assert stats.lost_frames == stats.gaps >= 4
    assert stats.bad_checksum == 0 and stats.malformed == 0


def test_c_firmware_uptime_wrap_keeps_timestamps_rising(
    c_device, session: DeviceSession, recorder: Recorder  # type: ignore[no-untyped-def]
) -> None:
    c_device("--interval-ms", "20", "--uptime-offset-ms", str((1 << 32) - 300))
    session.after_handshake = []
    session.open()
    wait_until(lambda: any(r.message.uptime_ms < 10_000  # type: ignore[union-attr]
                           for r in recorder.readings()), what="the 32-bit uptime to wrap")
    wait_until(lambda: len(recorder.readings()) >= 25, what="readings after the wrap")
    stamps = [r.ts_ms for r in recorder.readings()]
    assert stamps == sorted(stamps)
    assert session.stats.reboots == 0
    assert max(r.received_ms - r.ts_ms for r in recorder.readings()) < 1000  # type: ignore[operator]


# ---- every frame takes a sequence number (spec section 3) ----------------------------------


def test_frames_of_an_unknown_kind_are_not_counted_as_lost(
    firmware: SimulatedFirmware, session: DeviceSession, recorder: Recorder
) -> None:
    session.open()
    wait_until(lambda: recorder.readings(), what="first reading")
    firmware.send(lambda seq, t: encode_frame(seq, "STAT", {"t": t, "heap": 2048}))
    firmware.send(lambda seq, t: encode_frame(seq, "STAT", {"t": t, "heap": 2000}))
    seen = len(recorder.readings())
    wait_until(lambda: len(recorder.readings()) >= seen + 3, what="readings after the STATs")
    assert session.stats.unknown_kinds == 2
    assert (session.stats.lost_frames, session.stats.gaps) == (0, 0)


def test_a_refused_message_still_takes_its_sequence_number(
    firmware: SimulatedFirmware, session: DeviceSession, recorder: Recorder
) -> None:
    session.open()
    wait_until(lambda: recorder.readings(), what="first reading")
    firmware.send(lambda seq, t: encode_frame(seq, "R", {"t": str(t), "0": "nan"}))
    seen = len(recorder.readings())
    wait_until(lambda: len(recorder.readings()) >= seen + 3, what="readings after the bad one")
    assert session.stats.bad_messages == 1
    assert session.stats.lost_frames == 0


def test_hello_with_a_repeated_channel_is_refused_and_counted(
    virtual_port: VirtualPort, session: DeviceSession
) -> None:
    channels = (Channel("a0", "voltage", "V"), Channel("a0", "voltage", "V"))
    device = SimulatedFirmware(virtual_port.fd, channels=channels).start()
    try:
        with pytest.raises(ProtocolError, match=r"channel a0:voltage twice \(channels 0 and 1\)"):
            session.open()
    finally:
        device.stop()
    assert session.stats.refused_hellos >= 1


@pytest.mark.parametrize("seconds", [0, 3601, "5s"])
def test_identify_out_of_range_is_refused_before_it_is_sent(
    firmware: SimulatedFirmware, session: DeviceSession, seconds: int | str
) -> None:
    session.open()
    with pytest.raises(ProtocolError, match=r"IDENTIFY s=.*: seconds must be a whole number in "
                                            r"1\.\.3600"):
        session.command("IDENTIFY", {"s": seconds})
    assert session.command("IDENTIFY", {"s": 3600}).fields == {"s": "3600"}  # type: ignore[union-attr]
    sent = [c.fields for c in firmware.commands if c.kind == "IDENTIFY"]
    assert sent == [{"s": "3600"}]  # only the valid one went out
