"""Debounce logic with times driven by the test."""

from edge.drivers.debounce import Debouncer

SETTLE_S = 0.05


def test_a_bouncing_contact_reports_one_change_stamped_at_the_first_edge() -> None:
    d = Debouncer(SETTLE_S, initial=0)
    for i, value in enumerate([1, 0, 1, 0, 1]):  # 5 edges, 2 ms apart
        d.edge(value, ts_ms=1000 + 2 * i, now_s=10.0 + 0.002 * i)
    assert d.settle(10.008 + SETTLE_S - 0.001) is None  # not settled yet
    assert d.settle(10.008 + SETTLE_S) == (1, 1000)
    assert d.settle(11.0) is None


def test_a_glitch_back_to_the_reported_state_reports_nothing() -> None:
    d = Debouncer(SETTLE_S, initial=0)
    d.edge(1, ts_ms=1000, now_s=1.0)
    d.edge(0, ts_ms=1003, now_s=1.003)
    assert d.settle(2.0) is None
    assert d.reported == 0


def test_separate_changes_each_get_their_own_timestamp() -> None:
    d = Debouncer(SETTLE_S, initial=0)
    d.edge(1, ts_ms=5000, now_s=5.0)
    assert d.settle(5.1) == (1, 5000)
    d.edge(0, ts_ms=7250, now_s=7.25)
    assert d.due_s() == 7.25 + SETTLE_S
    assert d.settle(7.4) == (0, 7250)


def test_zero_settle_time_reports_every_change() -> None:
    d = Debouncer(0.0, initial=None)
    d.edge(1, ts_ms=1, now_s=0.0)
    assert d.settle(0.0) == (1, 1)
