"""Sequence gaps and the mapping of device uptime to UTC."""

from firmware_bridge.clock import UPTIME_MODULUS, DeviceClock
from firmware_bridge.sequence import SequenceTracker


def test_gaps_are_counted_in_lost_frames() -> None:
    tracker = SequenceTracker()
    assert [tracker.observe(s) for s in (0, 1, 2, 5, 6, 9)] == [0, 0, 0, 2, 0, 2]
    assert (tracker.lost, tracker.gaps) == (4, 2)


def test_sequence_wraps_without_a_gap() -> None:
    tracker = SequenceTracker()
    for seq in (65534, 65535, 0, 1):
        tracker.observe(seq)
    assert tracker.lost == 0
    tracker.observe(3)
    assert tracker.lost == 1


def test_a_jump_backwards_is_a_resync_not_sixty_thousand_lost_frames() -> None:
    tracker = SequenceTracker()
    for seq in (100, 101, 7):
        tracker.observe(seq)
    assert (tracker.lost, tracker.resyncs) == (0, 1)


def test_uptime_maps_to_arrival_time_minus_the_smallest_delay() -> None:
    clock = DeviceClock()
    base = 1_800_000_000_000
    assert clock.observe(1000, base + 50) == base + 50  # only estimate so far
    # The next frame arrives faster: the offset estimate tightens by 40 ms.
    assert clock.observe(2000, base + 1010) == base + 1010
    assert clock.observe(3000, base + 2090) == base + 2010  # a slow frame keeps the estimate


def test_timestamps_never_lie_after_arrival() -> None:
    clock = DeviceClock()
    for uptime, arrival in ((0, 100), (10, 105), (20, 140), (30, 131)):
        assert clock.observe(uptime, arrival) <= arrival


def test_uptime_wrap_after_49_days_keeps_time_moving_forward() -> None:
    clock = DeviceClock()
    base = 1_800_000_000_000
    before = clock.observe(UPTIME_MODULUS - 500, base)
    assert not clock.is_backwards(300)
    after = clock.observe(300, base + 800)
    assert after - before == 800


def test_uptime_going_backwards_means_a_restart() -> None:
    clock = DeviceClock()
    clock.observe(5_000_000, 0)
    assert clock.is_backwards(200)
    assert not clock.is_backwards(5_000_100)
