"""The test vectors printed in docs/firmware-protocol.md are what the encoders produce."""

import itertools
import os
import re
from pathlib import Path

from firmware_bridge.clock import DeviceClock
from firmware_bridge.crc import crc16
from firmware_bridge.frame import Frame, FrameDecoder, Rejected, encode_frame
from firmware_bridge.session import DeviceSession, LinkEvent, Received
from firmware_bridge.simulator import VirtualPort
from tests.firmware_bridge.helpers import python_vectors, wait_until

SPEC = Path(__file__).parents[2] / "docs" / "firmware-protocol.md"


def spec_block(name: str) -> list[str]:
    match = re.search(rf"<!-- test-vectors:{name} -->\n```text\n(.*?)```", SPEC.read_text(),
                      re.DOTALL)
    assert match is not None, f"no {name} vectors in {SPEC}"
    return match.group(1).splitlines()


def test_crc_examples_of_the_spec() -> None:
    text = SPEC.read_text()
    assert "`123456789` → `29B1`" in text and crc16(b"123456789") == 0x29B1
    assert "`1 PING` → `8C6F`" in text and crc16(b"1 PING") == 0x8C6F


def test_device_vectors_match_the_encoders() -> None:
    spec = "".join(f"{line}\r\n" for line in spec_block("device")).encode()
    assert spec == python_vectors()


def test_host_vectors_match_the_command_encoder() -> None:
    expected = [encode_frame(0, "HELLO"), encode_frame(1, "PING"),
                encode_frame(2, "INTERVAL", {"ms": 2500}), encode_frame(3, "IDENTIFY", {"s": 10})]
    assert [f"{line}\r\n".encode() for line in spec_block("host")] == expected


def test_damaged_vectors_are_classified_as_the_spec_says() -> None:
    for row in spec_block("damaged"):
        line, _, verdict = row.partition("->")
        items = FrameDecoder().feed(line.rstrip().encode() + b"\r\n")
        seen = [i.reason.replace("_", " ") if isinstance(i, Rejected) else f"frame {i.seq}"
                for i in items]
        expected = [part.strip().split(" (")[0] for part in verdict.split(", then ")]
        assert seen == expected, row
        assert all(isinstance(i, Rejected | Frame) for i in items)


def _forward(last: int, t: int) -> bool:
    """Section 3's rule, as written there: forward (possibly across the wrap), else a restart."""
    return (t - last) % 2**32 < 2**31


def test_section_3_states_the_uptime_rule_the_clock_applies() -> None:
    assert "`(t - last) mod 2^32 < 2^31`" in SPEC.read_text()
    pairs = [(1523, 6523), (12300, 4294967295), (4294967295, 0), (2**31 - 1, 0), (5, 2**31 + 5),
             (5, 2**31 + 4), (0, 0)]
    for last, t in pairs:
        clock = DeviceClock()
        clock.observe(last, 0)
        assert clock.is_backwards(t) is not _forward(last, t), (last, t)


def test_device_vectors_end_with_a_wrap_that_is_not_a_restart() -> None:
    frames = [f for f in FrameDecoder().feed(python_vectors()) if isinstance(f, Frame)]
    uptimes = [int(f.fields["t"]) for f in frames]
    verdicts = [_forward(a, b) for a, b in itertools.pairwise(uptimes)]
    # Read as one stream: 12300 -> 4294967295 goes back (a restart), 4294967295 -> 0 is the wrap.
    assert verdicts == [True] * 6 + [False, True]
    clock = DeviceClock()
    base = 1_800_000_000_000
    before = clock.observe(4294967295, base)
    assert not clock.is_backwards(0)
    assert clock.observe(0, base + 1) - before == 1


def test_a_session_reading_the_device_vectors_sees_one_restart_and_no_loss(
    virtual_port: VirtualPort,
) -> None:
    events: list[LinkEvent] = []
    arrivals = itertools.count(1_800_000_000_000, 7)
    session = DeviceSession(str(virtual_port.path), on_event=events.append,
                            clock=lambda: next(arrivals))
    try:
        session.open(wait_for_hello=False)
        os.write(virtual_port.fd, python_vectors())
        wait_until(lambda: len([e for e in events if isinstance(e, Received)]) == 9,
                   what="the 9 vector frames")
    finally:
        session.close()
    stamps = [e.ts_ms for e in events if isinstance(e, Received)]
    assert session.stats.reboots == 1 and session.stats.lost_frames == 0
    assert stamps[-1] is not None and stamps[-2] is not None and stamps[-1] >= stamps[-2]
