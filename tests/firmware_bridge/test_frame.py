"""Framing: CRC, encoding, and a decoder that resynchronises after noise."""

import pytest

from firmware_bridge.crc import crc16
from firmware_bridge.errors import ProtocolError
from firmware_bridge.frame import MAX_LINE_BYTES, Frame, FrameDecoder, Rejected, encode_frame


def test_crc_is_ccitt_false_with_its_standard_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


def test_encoded_frame_matches_the_documented_vector() -> None:
    assert encode_frame(3, "ACK", {"t": 12000, "ref": 7}) == b"$3 ACK t=12000 ref=7*1944\r\n"


def test_encode_then_decode_round_trips() -> None:
    line = encode_frame(65535, "R", [("t", 4294967295), ("0", "-0.05"), ("12", "1e-3")])
    [frame] = FrameDecoder().feed(line)
    assert frame == Frame(65535, "R", {"t": "4294967295", "0": "-0.05", "12": "1e-3"},
                          line.rstrip(b"\r\n"))


@pytest.mark.parametrize(("kind", "fields"), [
    ("r", {}), ("TOOLONGKIND", {}), ("R", {"T": 1}), ("R", {"t": "a b"}), ("R", {"t": "$"}),
    ("R", {"t": ""}), ("R", {"x" * 17: 1}),
])
def test_encoder_refuses_what_the_decoder_would_refuse(kind: str, fields: dict) -> None:
    with pytest.raises(ProtocolError):
        encode_frame(1, kind, fields)


def test_decoder_skips_noise_and_counts_it() -> None:
    decoder = FrameDecoder()
    good = encode_frame(1, "PING")
    items = decoder.feed(b"boot v1.2 ok\r\n\x00\xff garbage " + good)
    assert items[0] == Rejected("noise", b"boot v1.2 ok\r")
    assert isinstance(items[1], Frame) and items[1].seq == 1
    assert decoder.stats.noise_bytes == len(b"boot v1.2 ok\r\n") + len(b"\x00\xff garbage ")


@pytest.mark.parametrize(("stream", "noise"), [
    (b"boot ok\r\n", 9),  # a text line counts its "\r\n"
    (b"boot ok\n", 8),  # or its bare "\n"
    (b"\r\n\n", 3),  # blank lines are noise too, though not reported
    (b"dbg $1 PING*8C6F\r\n", 4),  # text before a "$": the frame's own bytes are not noise
    (b"x$7 R t=1\r\n", 1),  # a malformed frame is a frame attempt, not noise
])
def test_noise_bytes_are_every_byte_outside_frame_attempts(stream: bytes, noise: int) -> None:
    decoder = FrameDecoder()
    for i in range(len(stream)):  # byte by byte: the count must not depend on the chunks
        decoder.feed(stream[i:i + 1])
    assert decoder.stats.noise_bytes == noise


def test_frame_cut_short_by_the_next_is_truncated_and_the_next_still_decodes() -> None:
    decoder = FrameDecoder()
    items = decoder.feed(b"$7 R t=100 0=1.2" + encode_frame(8, "R", {"t": 200}))
    assert [type(i) for i in items] == [Rejected, Frame]
    assert items[0].reason == "truncated" and items[1].seq == 8
    assert decoder.stats.truncated == 1 and decoder.stats.frames == 1


def test_flipped_bit_is_a_bad_checksum() -> None:
    line = bytearray(encode_frame(4, "R", {"t": 5, "0": "21.50"}))
    line[line.index(b"21.50")] ^= 0x01  # '2' -> '3'
    decoder = FrameDecoder()
    [item] = decoder.feed(bytes(line))
    assert isinstance(item, Rejected) and item.reason == "bad_checksum"
    assert decoder.stats.bad_checksum == 1 and decoder.stats.frames == 0


@pytest.mark.parametrize("body", [
    b"", b"1", b"x R", b"123456 R", b"65536 R", b"1 r", b"1 R t", b"1 R t=", b"1 R =1",
    b"1  R", b"1 R t=1 ", b"1 R T=1", b"1 R t=\x01", b"1 R t=\xc3\xa9",
])
def test_grammar_violations_with_a_valid_crc_are_malformed(body: bytes) -> None:
    decoder = FrameDecoder()
    [item] = decoder.feed(b"$%s*%04X\n" % (body, crc16(body)))
    assert isinstance(item, Rejected) and item.reason == "malformed", item
    assert decoder.stats.malformed == 1


@pytest.mark.parametrize("line", [b"$1 PING\r\n", b"$1 PING*12\r\n", b"$1 PING*0x1A\r\n",
                                  b"$1 PING*12345\r\n"])
def test_missing_or_mangled_checksum_is_malformed(line: bytes) -> None:
    [item] = FrameDecoder().feed(line)
    assert isinstance(item, Rejected) and item.reason == "malformed"


def test_lowercase_hex_checksum_and_bare_newline_are_accepted() -> None:
    line = encode_frame(2, "PING").rstrip(b"\r\n")
    [frame] = FrameDecoder().feed(line[:-4] + line[-4:].lower() + b"\n")
    assert isinstance(frame, Frame)


def test_stream_split_at_every_byte_decodes_the_same() -> None:
    stream = (b"noise\r\n" + encode_frame(1, "R", {"t": 1, "0": "1.5"}) + b"$2 R t"
              + encode_frame(3, "ACK", {"t": 2, "ref": 0}))
    whole = FrameDecoder().feed(stream)
    decoder = FrameDecoder()
    pieces = [item for i in range(len(stream)) for item in decoder.feed(stream[i:i + 1])]
    assert pieces == whole
    assert [getattr(i, "seq", None) for i in whole] == [None, 1, None, 3]


def test_line_that_never_ends_is_dropped_without_growing_memory() -> None:
    decoder = FrameDecoder()
    items = decoder.feed(b"$1 R t=1 0=" + b"9" * (3 * MAX_LINE_BYTES))
    assert [i.reason for i in items if isinstance(i, Rejected)] == ["overlong"]
    assert len(decoder._buffer) <= MAX_LINE_BYTES + 1
    [frame] = decoder.feed(b"9999\r\n" + encode_frame(2, "PING"))[-1:]
    assert isinstance(frame, Frame) and frame.seq == 2


def test_overlong_complete_line_is_rejected() -> None:
    body = b"1 R t=1 0=" + b"1" * MAX_LINE_BYTES
    [item] = FrameDecoder().feed(b"$%s*%04X\n" % (body, crc16(body)))
    assert isinstance(item, Rejected) and item.reason == "overlong"
