"""Jittered exponential backoff: bounded, doubling, capped, spread."""

import random

from fabcity.backoff import jittered_backoff_s


def test_each_wait_is_half_its_step_fixed_and_half_random() -> None:
    rng = random.Random(1)
    for attempt, step in enumerate([1, 2, 4, 8, 16, 30, 30]):
        waits = [jittered_backoff_s(attempt, 1, 30, rng) for _ in range(200)]
        assert step / 2 <= min(waits) and max(waits) <= step
        assert max(waits) - min(waits) > step / 4  # spread over the random half


def test_clients_that_failed_together_return_apart() -> None:
    rng = random.Random(2)
    waits = sorted(jittered_backoff_s(3, 1, 30, rng) for _ in range(1000))
    per_tenth = [sum(1 for w in waits if lo / 10 <= w < (lo + 1) / 10) for lo in range(40, 80)]
    assert max(per_tenth) < 60  # 1,000 clients over 4 s: about 25 per 0.1 s, none bunched


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert 15 <= jittered_backoff_s(10_000, 1, 30) <= 30
