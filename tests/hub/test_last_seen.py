from collections.abc import Mapping

from hub.last_seen import LastSeenBuffer


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _buffer() -> tuple[LastSeenBuffer, list[dict[tuple[str, str], int]], _Clock]:
    writes: list[dict[tuple[str, str], int]] = []
    clock = _Clock()

    def write(seen: Mapping[tuple[str, str], int]) -> None:
        writes.append(dict(seen))

    return LastSeenBuffer(write, interval_s=1.0, clock=clock), writes, clock


def test_a_new_device_is_written_at_once_then_at_most_once_per_interval() -> None:
    buffer, writes, clock = _buffer()
    buffer.add({("lab", "pi-1"): 5})
    buffer.flush_if_due()
    assert writes == [{("lab", "pi-1"): 5}]
    buffer.add({("lab", "pi-1"): 9})
    buffer.add({("lab", "pi-1"): 7})  # an older batch does not move it back
    buffer.flush_if_due()
    assert writes == [{("lab", "pi-1"): 5}] and buffer.pending
    assert 0.99 <= buffer.due_in() <= 1.0
    clock.now += 1.0
    assert buffer.due_in() == 0
    buffer.flush_if_due()
    assert writes[-1] == {("lab", "pi-1"): 9} and not buffer.pending


def test_another_new_device_makes_the_pending_times_due() -> None:
    buffer, writes, clock = _buffer()
    buffer.add({("lab", "pi-1"): 5})
    buffer.flush_if_due()
    clock.now += 0.1
    buffer.add({("lab", "pi-1"): 6})
    buffer.add({("lab", "pi-2"): 6})
    assert buffer.due_in() == 0
    buffer.flush_if_due()
    assert writes[-1] == {("lab", "pi-1"): 6, ("lab", "pi-2"): 6}


def test_flush_writes_what_is_pending_and_nothing_when_empty() -> None:
    buffer, writes, _clock = _buffer()
    buffer.flush()
    assert writes == []
    buffer.add({("lab", "pi-1"): 5})
    buffer.flush()
    buffer.add({("lab", "pi-1"): 6})
    buffer.flush()  # on stop: before the interval is over
    assert writes == [{("lab", "pi-1"): 5}, {("lab", "pi-1"): 6}]
