"""The test vectors printed in docs/firmware-protocol.md are what the encoders produce."""

import re
from pathlib import Path

from firmware_bridge.crc import crc16
from firmware_bridge.frame import Frame, FrameDecoder, Rejected, encode_frame
from tests.firmware_bridge.helpers import python_vectors

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
