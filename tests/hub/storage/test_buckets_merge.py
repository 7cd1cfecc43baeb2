"""Merging bucket statistics: copies only what it combines, never changes its input."""

from dataclasses import astuple

from hub.storage.base import HOUR_MS, MINUTE_MS, BucketStats
from hub.storage.buckets import merge


def _minute(k: int, value: float) -> BucketStats:
    return BucketStats("s", "d", "x", "energy", "Wh", k * MINUTE_MS, 2, 2 * value, value - 1,
                       value, value - 1, value, 1.0)


def test_rows_that_are_buckets_already_come_back_as_they_are() -> None:
    rows = [_minute(k, 10.0 + k) for k in range(5)]
    merged = merge(rows, MINUTE_MS)
    assert all(a is b for a, b in zip(merged, rows, strict=True))


def test_combining_rows_leaves_the_input_untouched() -> None:
    rows = [_minute(k, 10.0 + k) for k in range(120)]
    before = [astuple(r) for r in rows]
    merged = merge(rows, HOUR_MS)
    assert [astuple(r) for r in rows] == before
    assert [(m.start_ms, m.count, m.first, m.last) for m in merged] == [
        (0, 120, 9.0, 69.0), (HOUR_MS, 120, 69.0, 129.0)]
    # inside a bucket: each row's own rise (1) plus the step from one row to the next (0)
    assert merged[0].increase == 60.0
