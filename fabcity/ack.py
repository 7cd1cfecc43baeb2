"""The ``ack`` payload of wire contract v1: which readings of a device the hub has stored.

A device that asks for confirmation (``"confirm": true`` in its ``readings`` payloads) gets,
on ``fabcity/v1/{site}/{device}/ack``, ``{"stored": [[first, last], ...]}``: inclusive ranges
of its own sequence numbers whose readings the hub holds durably (stored, dead-lettered, or
refused for good). Both sides import this module; docs/protocol.md section 7 specifies it.
"""

import json
from collections.abc import Iterable

from fabcity.codec import load_json
from fabcity.errors import BadReading

__all__ = ["MAX_ACK_PAYLOAD_BYTES", "MAX_RANGES_PER_ACK", "decode_ack", "encode_ack",
           "merge_ranges"]

#: One ack message holds at most this many ranges (~45 KB); more go in further messages.
MAX_RANGES_PER_ACK = 2_000
MAX_ACK_PAYLOAD_BYTES = 65_536


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping and adjacent ranges (``b + 1 == c``) joined: the same set of
    numbers, fewer pairs."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def encode_ack(ranges: Iterable[tuple[int, int]]) -> list[bytes]:
    """The ``ack`` payloads for ``ranges``: merged, split into messages of at most
    :data:`MAX_RANGES_PER_ACK` ranges."""
    merged = merge_ranges(ranges)
    return [
        json.dumps({"stored": [list(pair) for pair in merged[i:i + MAX_RANGES_PER_ACK]]},
                   separators=(",", ":")).encode()
        for i in range(0, len(merged), MAX_RANGES_PER_ACK)
    ]


def decode_ack(payload: bytes) -> list[tuple[int, int]]:
    """The ranges of an ``ack`` payload; :class:`BadReading` (``oversized``, ``bad_json``,
    ``bad_schema``) if it is not one."""
    if len(payload) > MAX_ACK_PAYLOAD_BYTES:
        raise BadReading("oversized", f"ack payload of {len(payload)} bytes exceeds "
                                      f"{MAX_ACK_PAYLOAD_BYTES}")
    body = load_json(payload)
    stored = body.get("stored") if isinstance(body, dict) else None
    if not isinstance(stored, list):
        raise BadReading("bad_schema", "ack payload must be an object with a 'stored' list")
    ranges: list[tuple[int, int]] = []
    for pair in stored:
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(type(n) is int and n >= 0 for n in pair) or pair[0] > pair[1]):
            raise BadReading("bad_schema", f"each 'stored' entry must be [first, last] with "
                                           f"0 <= first <= last, got {pair!r}")
        ranges.append((pair[0], pair[1]))
    return ranges
