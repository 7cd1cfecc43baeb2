"""The durable store-and-forward buffer: FIFO, bounded, and it survives SIGKILL."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.buffer import Buffer
from fabcity.errors import ConfigError
from fabcity.reading import Reading

T0 = 1_795_730_700_000


def readings(start: int, count: int, sensor: str = "air") -> list[Reading]:
    return [Reading("lab", "pi", sensor, "sequence", i, T0 + i, "1") for i in range(start,
                                                                                   start + count)]


def values(buffer: Buffer) -> list[float]:
    return [r.value for _, r in buffer.take(0, 1_000_000)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "buffer.db"


def test_take_returns_readings_in_fifo_order_with_increasing_ids(path: Path) -> None:
    buffer = Buffer(path)
    buffer.put(readings(0, 3))
    buffer.put(readings(3, 2))
    rows = buffer.take(0, 10)
    assert [r.value for _, r in rows] == [0, 1, 2, 3, 4]
    ids = [row_id for row_id, _ in rows]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert len(buffer) == 5


def test_readings_come_back_equal(path: Path) -> None:
    buffer = Buffer(path)
    original = [Reading("lab", "pi", "air", "pm2_5", 12.4, T0, "µg/m³", ("suspect_spike", "x")),
                Reading("lab", "pi", "air", "temperature", -3.25, T0 + 1)]
    buffer.put(original)
    assert [r for _, r in buffer.take(0, 10)] == original


def test_take_after_a_cursor_and_with_a_limit(path: Path) -> None:
    buffer = Buffer(path)
    buffer.put(readings(0, 10))
    first = buffer.take(0, 4)
    assert [r.value for _, r in first] == [0, 1, 2, 3]
    cursor = first[-1][0]
    assert [r.value for _, r in buffer.take(cursor, 4)] == [4, 5, 6, 7]
    assert buffer.take(buffer.take(0, 100)[-1][0], 4) == []
    assert len(buffer) == 10  # take does not remove


def test_remove_deletes_inclusive_id_ranges_only(path: Path) -> None:
    buffer = Buffer(path)
    buffer.put(readings(0, 10))
    ids = [row_id for row_id, _ in buffer.take(0, 10)]
    assert buffer.remove([(ids[0], ids[2]), (ids[5], ids[5])]) == 4
    assert values(buffer) == [3, 4, 6, 7, 8, 9]
    assert len(buffer) == 6
    assert buffer.remove([(ids[0], ids[2])]) == 0  # removing twice is harmless
    assert buffer.remove([]) == 0
    assert len(buffer) == 6


def test_full_buffer_drops_the_oldest_first_and_counts_them(path: Path) -> None:
    buffer = Buffer(path, max_readings=5)
    buffer.put(readings(0, 4))
    buffer.put(readings(4, 3))
    assert values(buffer) == [2, 3, 4, 5, 6]
    assert buffer.dropped == 2
    buffer.put(readings(7, 12))  # one put larger than the whole buffer
    assert values(buffer) == [14, 15, 16, 17, 18]
    assert len(buffer) == 5
    assert buffer.dropped == 14


def test_contents_and_dropped_count_survive_reopening(path: Path) -> None:
    buffer = Buffer(path, max_readings=3)
    buffer.put(readings(0, 5))
    buffer.close()
    buffer.close()  # closing twice is safe
    reopened = Buffer(path, max_readings=3)
    assert values(reopened) == [2, 3, 4]
    assert len(reopened) == 3
    assert reopened.dropped == 2
    reopened.put(readings(5, 1))
    assert reopened.dropped == 3
    reopened.close()
    assert Buffer(path).dropped == 3


def test_ids_keep_rising_after_everything_was_removed(path: Path) -> None:
    buffer = Buffer(path)
    buffer.put(readings(0, 2))
    last = buffer.take(0, 10)[-1][0]
    buffer.remove([(0, last)])
    buffer.close()
    reopened = Buffer(path)
    reopened.put(readings(2, 1))
    assert reopened.take(0, 10)[0][0] > last  # a publisher's cursor never skips new rows


def test_unusable_path_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"buffer\.path: cannot open"):
        Buffer(tmp_path / "file" / "buffer.db")


CHILD = """
import sys
from edge.buffer import Buffer
from fabcity.reading import Reading
buffer = Buffer(sys.argv[1])
for batch in range(5):
    buffer.put([Reading("lab", "pi", "air", "sequence", batch * 100 + i, {t0} + batch * 100 + i,
                        "1") for i in range(100)])
print("put returned", flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_readings_survive_sigkill_right_after_put_returned(path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(t0=T0), str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "put returned\n"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    buffer = Buffer(path)
    assert values(buffer) == list(range(500))
    assert len(buffer) == 500
