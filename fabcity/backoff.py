"""Exponential backoff with jitter, for clients that lose a server together.

When a broker restarts, every edge agent loses it in the same instant; with plain doubling
(paho's ``reconnect_delay_set``) they would all come back in the same instant too, attempt
after attempt. Half of each step is random, so their returns spread over the step.
"""

import random

__all__ = ["jittered_backoff_s"]


def jittered_backoff_s(attempt: int, min_s: float, max_s: float,
                       rng: random.Random | None = None) -> float:
    """The wait before retry number ``attempt`` (from 0): a step of ``min_s`` doubling up to
    ``max_s``, of which the first half is fixed and the second half random."""
    step = min(max_s, min_s * 2 ** min(attempt, 30))
    return float(step / 2 + (rng or random).uniform(0, step / 2))
