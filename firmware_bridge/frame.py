"""Frames on the wire: ``$<seq> <KIND> <key>=<value> ...*<CRC>\\r\\n``, one per line.

The decoder resynchronises by itself: a frame starts at the last ``$`` of its line, text
outside frames (a boot banner, debug prints, line noise) is skipped and counted, and a frame
cut short by the next one is reported as truncated. See ``docs/firmware-protocol.md``.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from firmware_bridge.crc import crc16
from firmware_bridge.errors import ProtocolError

__all__ = [
    "FRAME_START",
    "MAX_LINE_BYTES",
    "SEQ_MODULUS",
    "DecoderStats",
    "Frame",
    "FrameDecoder",
    "Rejected",
    "encode_frame",
]

FRAME_START = b"$"
#: Longest frame the host accepts, counted from after ``$`` to before ``\n``.
MAX_LINE_BYTES = 1024
#: Sequence numbers are 16-bit and wrap to 0 after 65535.
SEQ_MODULUS = 1 << 16
MAX_SEQ_DIGITS = 5
MAX_KIND_CHARS = 8
#: How much of a rejected line an event keeps for display.
REJECTED_SNIPPET_BYTES = 120

_KEY_RE = re.compile(r"[a-z0-9_]{1,16}")
_KIND_RE = re.compile(r"[A-Z]{1,8}")
_HEX4_RE = re.compile(rb"[0-9A-Fa-f]{4}")
_VALUE_RE = re.compile(r"[\x21-\x23\x25-\x7e]+")  # printable ASCII but space and "$"


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose checksum and grammar are valid; ``raw`` is the line from ``$`` to CRC."""

    seq: int
    kind: str
    fields: dict[str, str]
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that is not a valid frame.

    ``reason``: ``noise`` (text outside any frame), ``truncated`` (a frame cut short by the
    next ``$``), ``bad_checksum``, ``malformed``, ``overlong``; ``bad_message`` is used by the
    session for a valid frame whose content breaks the protocol.
    """

    reason: str
    raw: bytes
    detail: str = ""


@dataclass(slots=True)
class DecoderStats:
    """Counters of one decoder (reset only by creating a new one)."""

    frames: int = 0
    bad_checksum: int = 0
    malformed: int = 0
    truncated: int = 0
    overlong: int = 0
    #: Bytes outside any frame attempt (a frame attempt runs from its "$" through the "\n"
    #: ending its line): text lines with their "\r\n", and text before a "$".
    noise_bytes: int = 0


def encode_frame(
    seq: int, kind: str, fields: Mapping[str, str | int] | Iterable[tuple[str, str | int]] = ()
) -> bytes:
    """One frame as bytes, ``\\r\\n`` included; refuses anything the decoder would refuse."""
    if not 0 <= seq < SEQ_MODULUS:
        raise ProtocolError(f"sequence number {seq} out of range 0..{SEQ_MODULUS - 1}")
    if not _KIND_RE.fullmatch(kind):
        raise ProtocolError(f"invalid frame kind {kind!r}: must match {_KIND_RE.pattern}")
    parts = [f"{seq} {kind}"]
    items = fields.items() if isinstance(fields, Mapping) else fields
    for key, value in items:
        text = str(value)
        if not _KEY_RE.fullmatch(key):
            raise ProtocolError(f"invalid field name {key!r}: must match {_KEY_RE.pattern}")
        if not _VALUE_RE.fullmatch(text):
            raise ProtocolError(f"invalid value {text!r} of field {key!r}: printable ASCII "
                                "without spaces or '$' required")
        parts.append(f"{key}={text}")
    body = " ".join(parts).encode("ascii")
    return b"$%s*%04X\r\n" % (body, crc16(body))


class FrameDecoder:
    """Turn a byte stream into :class:`Frame` and :class:`Rejected` items, in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.stats = DecoderStats()

    def reset(self) -> None:
        """Forget a partial line (after a reconnect); counters are kept."""
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Frame | Rejected]:
        """Decode every complete line in ``data`` plus what was buffered before."""
        buffer = self._buffer
        buffer += data
        out: list[Frame | Rejected] = []
        start = 0
        while (newline := buffer.find(b"\n", start)) >= 0:
            self._line(bytes(buffer[start:newline]), out)
            start = newline + 1
        if start:
            del buffer[:start]
        if len(buffer) > MAX_LINE_BYTES + 1:
            self._trim(out)
        return out

    def _trim(self, out: list[Frame | Rejected]) -> None:
        """Bound memory when a line never ends: keep at most one frame's worth."""
        buffer = self._buffer
        dollar = buffer.rfind(FRAME_START)
        if dollar >= 0 and len(buffer) - dollar - 1 <= MAX_LINE_BYTES:
            self.stats.noise_bytes += dollar
            del buffer[:dollar]
            return
        if dollar >= 0:
            self.stats.overlong += 1
            self.stats.noise_bytes += dollar
            snippet = bytes(buffer[dollar:dollar + REJECTED_SNIPPET_BYTES])
            out.append(Rejected("overlong", snippet, f"longer than {MAX_LINE_BYTES} bytes"))
        else:
            self.stats.noise_bytes += len(buffer)
        buffer.clear()

    def _line(self, line: bytes, out: list[Frame | Rejected]) -> None:
        stats = self.stats
        dollar = line.rfind(FRAME_START)
        if dollar < 0:
            # Noise is every byte outside a frame attempt, its line terminator included (the
            # "\n" split off above); a blank line is counted but not reported.
            stats.noise_bytes += len(line) + 1
            if line.strip():
                out.append(Rejected("noise", line[:REJECTED_SNIPPET_BYTES]))
            return
        if dollar:
            prefix = line[:dollar]
            cut = prefix.rfind(FRAME_START)
            if cut >= 0:
                stats.truncated += 1
                stats.noise_bytes += cut
                out.append(Rejected("truncated", prefix[cut:cut + REJECTED_SNIPPET_BYTES],
                                    "cut short by the next frame"))
            else:
                stats.noise_bytes += dollar
        out.append(self._check(line, dollar))

    def _check(self, line: bytes, dollar: int) -> Frame | Rejected:
        stats = self.stats
        end = len(line) - 1 if line.endswith(b"\r") else len(line)
        if len(line) - dollar - 1 > MAX_LINE_BYTES:
            stats.overlong += 1
            return Rejected("overlong", line[dollar:dollar + REJECTED_SNIPPET_BYTES],
                            f"longer than {MAX_LINE_BYTES} bytes")
        star = line.rfind(b"*", dollar, end)
        if star < 0 or end - star != 5 or not _HEX4_RE.fullmatch(line, star + 1, end):
            stats.malformed += 1
            return Rejected("malformed", line[dollar:end], "no *XXXX checksum at the end")
        body = line[dollar + 1:star]
        if crc16(body) != int(line[star + 1:end], 16):
            stats.bad_checksum += 1
            return Rejected("bad_checksum", line[dollar:end],
                            f"checksum {line[star + 1:end].decode()} != {crc16(body):04X}")
        frame = self._parse(body, line[dollar:end])
        if isinstance(frame, Rejected):
            stats.malformed += 1
        else:
            stats.frames += 1
        return frame

    @staticmethod
    def _parse(body: bytes, raw: bytes) -> Frame | Rejected:
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return Rejected("malformed", raw, "non-ASCII byte")
        if not text.isprintable():
            return Rejected("malformed", raw, "control character")
        tokens = text.split(" ")
        if len(tokens) < 2:
            return Rejected("malformed", raw, "no frame kind")
        seq_text, kind = tokens[0], tokens[1]
        if not (seq_text.isdigit() and len(seq_text) <= MAX_SEQ_DIGITS) or (
            int(seq_text) >= SEQ_MODULUS
        ):
            return Rejected("malformed", raw, f"bad sequence number {seq_text!r}")
        if not (len(kind) <= MAX_KIND_CHARS and kind.isalpha() and kind.isupper()):
            return Rejected("malformed", raw, f"bad frame kind {kind!r}")
        fields: dict[str, str] = {}
        for token in tokens[2:]:
            key, sep, value = token.partition("=")
            if not (sep and value and _KEY_RE.fullmatch(key)):
                return Rejected("malformed", raw, f"bad field {token!r}")
            fields.setdefault(key, value)
        return Frame(int(seq_text), kind, fields, raw)
