"""The ack payload: ranges merged, split, and refused with a reason when malformed."""

import pytest

from fabcity.ack import MAX_RANGES_PER_ACK, decode_ack, encode_ack, merge_ranges
from fabcity.codec import decode_batch, encode_batch
from fabcity.errors import BadReading
from fabcity.reading import Reading, now_ms
from fabcity.topic import Kind, Topic


def test_adjacent_and_overlapping_ranges_merge_and_gaps_stay() -> None:
    assert merge_ranges([(51, 100), (1, 50), (120, 150), (140, 160), (162, 162)]) == [
        (1, 100), (120, 160), (162, 162)]


def test_encode_then_decode_gives_the_merged_ranges() -> None:
    (payload,) = encode_ack([(1, 50), (51, 100), (200, 250)])
    assert payload == b'{"stored":[[1,100],[200,250]]}'
    assert decode_ack(payload) == [(1, 100), (200, 250)]


def test_many_ranges_are_split_into_several_messages() -> None:
    ranges = [(i * 10, i * 10 + 5) for i in range(MAX_RANGES_PER_ACK + 1)]
    payloads = encode_ack(ranges)
    assert len(payloads) == 2
    assert [r for p in payloads for r in decode_ack(p)] == ranges


@pytest.mark.parametrize(("payload", "reason"), [
    (b"[]", "bad_schema"),
    (b'{"stored": [[5, 1]]}', "bad_schema"),
    (b'{"stored": [[1, 2, 3]]}', "bad_schema"),
    (b'{"stored": [[-1, 2]]}', "bad_schema"),
    (b'{"stored": [[true, 2]]}', "bad_schema"),
    (b'{"stored": [[1.5, 2]]}', "bad_schema"),
    (b"not json", "bad_json"),
    (b'{"stored": []' + b" " * 70_000 + b"}", "oversized"),
])
def test_a_malformed_ack_is_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(BadReading) as err:
        decode_ack(payload)
    assert err.value.reason == reason


def test_a_batch_asking_for_confirmation_carries_its_first_sequence_number() -> None:
    topic = Topic("lab", "pi-1", Kind.READINGS)
    reading = Reading("lab", "pi-1", "air", "pm2_5", 1.0, now_ms(), "ug/m3")
    batch = decode_batch(topic, encode_batch(100, [reading], first=51, confirm=True))
    assert (batch.first, batch.seq, batch.confirm) == (51, 100, True)
    plain = decode_batch(topic, encode_batch(100, [reading]))
    assert (plain.first, plain.confirm) == (100, False)
    assert b"confirm" not in encode_batch(100, [reading])


@pytest.mark.parametrize("extra", ['"first": 101', '"first": -1', '"first": "1"',
                                   '"confirm": 1', '"confirm": "yes"'])
def test_bad_first_or_confirm_is_a_schema_error(extra: str) -> None:
    payload = ('{"seq": 100, ' + extra + ', "readings": []}').encode()
    with pytest.raises(BadReading) as err:
        decode_batch(Topic("lab", "pi-1", Kind.READINGS), payload)
    assert err.value.reason == "bad_schema"
