"""Rate-limited logging: a repeated line is let through a few times per interval, then summed up."""

import logging

import pytest

from fabcity.logs import RateLimit, rate_limited


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(caplog: pytest.LogCaptureFixture) -> tuple[logging.Logger, Clock]:
    clock = Clock()
    logger = logging.getLogger("tests.rate_limited")
    logger.filters.clear()
    logger.addFilter(RateLimit(burst=3, interval_s=10, clock=clock))
    caplog.set_level(logging.INFO, logger="tests.rate_limited")
    return logger, clock


def test_a_repeated_template_passes_burst_times_per_interval_then_says_how_many_were_dropped(
    limited: tuple[logging.Logger, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    logger, clock = limited
    for n in range(1000):
        logger.warning("sensor %r: dropped sample %d", "air", n)
    assert len(caplog.records) == 3
    assert "further lines like this are suppressed" in caplog.records[-1].getMessage()
    clock.now = 10.0
    logger.warning("sensor %r: dropped sample %d", "air", 1000)
    assert len(caplog.records) == 4
    assert caplog.records[-1].getMessage() == \
        "sensor 'air': dropped sample 1000 [997 more like this suppressed]"


def test_templates_are_limited_separately(
    limited: tuple[logging.Logger, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    logger, _ = limited
    for _ in range(10):
        logger.warning("one %s", "x")
        logger.warning("two %s", "x")
    assert [r.msg.split(" ")[0] for r in caplog.records] == ["one", "two"] * 3


def test_rate_limited_attaches_one_filter_only() -> None:
    logger = logging.getLogger("tests.rate_limited_once")
    assert rate_limited(rate_limited(logger)) is logger
    assert sum(isinstance(f, RateLimit) for f in logger.filters) == 1


def test_a_rate_key_keeps_distinct_cases_of_one_template_apart(
    limited: tuple[logging.Logger, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    logger, _ = limited
    for reason in ("bad_json", "bad_name", "bad_value", "oversized", "bad_unit"):
        logger.warning("rejected (%s)", reason, extra={"rate_key": reason})
    assert len(caplog.records) == 5
    assert all("suppressed" not in r.getMessage() for r in caplog.records)
