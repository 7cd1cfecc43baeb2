"""One HTTP POST to a remote network, and the decision what to do with its answer.

Standard library only (``urllib``): a forwarder sends a few small requests a minute.
"""

import random
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["Answer", "Verdict", "backoff_s", "judge", "post", "retry_after_s"]

RETRY_MIN_S = 1.0  # first backoff step
RETRY_MAX_S = 300.0  # backoff ceiling
RETRY_AFTER_MAX_S = 3600.0  # a Retry-After longer than this is capped
BODY_LOG_CHARS = 500  # of a refusal's body, kept for the log

Verdict = Literal["sent", "retry", "refused"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: a status (0: no answer at all), the start of the body, Retry-After."""

    status: int
    body: str
    retry_after: str | None = None


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Answer:
    """POST ``body``; a network failure is an :class:`Answer` with status 0, not an error."""
    # The forwarder's configured http(s) URL (validated in its options), nothing else.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return Answer(response.status, response.read(BODY_LOG_CHARS).decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        text = exc.read(BODY_LOG_CHARS).decode(errors="replace") if exc.fp else ""
        return Answer(exc.code, text, exc.headers.get("Retry-After") if exc.headers else None)
    except (OSError, ValueError) as exc:  # refused, reset, timeout, DNS, TLS
        return Answer(0, f"{type(exc).__name__}: {exc}")


def judge(answer: Answer) -> Verdict:
    """2xx: sent. No answer, 408, 429, 5xx: try again (nothing is lost). Any other 4xx (or
    an unexpected 1xx/3xx): refused for good, retrying the same body cannot help."""
    if 200 <= answer.status < 300:
        return "sent"
    if answer.status == 0 or answer.status in (408, 429) or answer.status >= 500:
        return "retry"
    return "refused"


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), capped; ``None`` if absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), RETRY_AFTER_MAX_S)


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half the step fixed, half random, so many hubs that
    failed together do not come back together. ``attempt`` counts from 0."""
    step = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** min(attempt, 30))
    return float(step / 2 + (rng or random).uniform(0, step / 2))
