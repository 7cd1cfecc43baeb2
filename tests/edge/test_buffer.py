"""The durable store-and-forward buffer: FIFO, bounded, and it survives SIGKILL.

Every behaviour holds with a spool (``commit_interval_s > 0``) and without (``0``).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edge.buffer
from edge.buffer import Buffer, spool_path
from fabcity.errors import ConfigError
from fabcity.reading import Reading

T0 = 1_795_730_700_000


def readings(start: int, count: int, sensor: str = "air") -> list[Reading]:
    return [Reading("lab", "pi", sensor, "sequence", i, T0 + i, "1") for i in range(start,
                                                                                   start + count)]


def values(buffer: Buffer) -> list[float]:
    return [r.value for _, r in buffer.take(0, 1_000_000)]


def on_card(path: Path) -> list[float]:
    """The values committed to the buffer's file on the card, as another process sees them."""
    conn = sqlite3.connect(path)
    try:
        return [v for (v,) in conn.execute("SELECT value FROM buffer ORDER BY id")]
    finally:
        conn.close()


def die(buffer: Buffer) -> None:
    """Stop as a killed process would: no commit, files closed as they are."""
    with buffer._lock:
        buffer._closed = True
        buffer._due.notify()
    if buffer._committer is not None:
        buffer._committer.join()
    buffer._conn.close()
    if buffer._spool is not None:
        buffer._spool.close()
    os.close(buffer._claim)  # the kernel releases a dead process's lock


@pytest.fixture(autouse=True, params=[1.0, 0.0], ids=["spooled", "commit-per-batch"])
def commit_interval_s(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> float:
    """Every test runs with both modes (spools live in the test's directory: conftest)."""
    monkeypatch.setattr(edge.buffer.Buffer.__init__, "__defaults__",
                        (1_000_000, "full", request.param, None))
    return float(request.param)


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
buffer = Buffer(sys.argv[1], commit_interval_s=float(sys.argv[2]), spool_dir=sys.argv[3])
for batch in range(5):
    buffer.put([Reading("lab", "pi", "air", "sequence", batch * 100 + i, {t0} + batch * 100 + i,
                        "1") for i in range(100)])
print("put returned", flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_readings_survive_sigkill_right_after_put_returned(
        path: Path, tmp_path: Path, commit_interval_s: float) -> None:
    spool_dir = tmp_path / "shm"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(t0=T0), str(path), str(commit_interval_s),
         str(spool_dir)],
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
    if commit_interval_s > 0:  # still in the spool only: the card has not seen them
        assert on_card(path) == []
    buffer = Buffer(path, spool_dir=spool_dir)
    assert values(buffer) == list(range(500))
    assert len(buffer) == 500
    assert on_card(path) == list(range(500))  # the spool moved to the card on opening


def test_readings_acknowledged_within_the_interval_never_reach_the_card(
        path: Path, commit_interval_s: float) -> None:
    if commit_interval_s == 0:
        pytest.skip("without a spool every batch is committed to the card")
    buffer = Buffer(path, commit_interval_s=0.5)
    buffer.put(readings(0, 50))
    buffer.remove([(0, buffer.take(0, 100)[-1][0])])
    buffer.put(readings(50, 10))
    assert on_card(path) == []
    time.sleep(0.8)  # the first put is due: what is still buffered moves to the card
    assert on_card(path) == list(range(50, 60))
    assert values(buffer) == list(range(50, 60))
    buffer.remove([(0, buffer.take(0, 100)[-1][0])])
    assert values(buffer) == [] and len(buffer) == 0
    time.sleep(0.8)  # deletes from the card wait for the next commit too
    assert on_card(path) == []
    wal = Path(f"{path}-wal")
    size = wal.stat().st_size
    for start in range(60, 160, 10):  # acknowledged at once: nothing more is written
        buffer.put(readings(start, 10))
        buffer.remove([(0, buffer.take(0, 100)[-1][0])])
    time.sleep(0.8)
    assert wal.stat().st_size == size
    buffer.put(readings(160, 1))
    buffer.close()
    assert on_card(path) == [160]  # what waits is committed on close
    assert not spool_path(path).exists()  # and the empty spool removed


def test_a_power_cut_loses_at_most_the_last_interval(
        path: Path, tmp_path: Path, commit_interval_s: float) -> None:
    """The spool (RAM) is gone after a power cut: what waited longer is on the card."""
    if commit_interval_s == 0:
        pytest.skip("without a spool a power cut loses nothing committed")
    buffer = Buffer(path, commit_interval_s=0.3)
    buffer.put(readings(0, 5))
    time.sleep(0.6)
    buffer.put(readings(5, 5))
    die(buffer)  # the power goes off: the spool in RAM is lost
    for suffix in ("", "-wal", "-shm"):
        Path(f"{spool_path(path)}{suffix}").unlink(missing_ok=True)
    assert values(Buffer(path, spool_dir=tmp_path / "empty")) == [0, 1, 2, 3, 4]


def test_ids_never_repeat_even_when_readings_never_reached_the_card(path: Path) -> None:
    buffer = Buffer(path)
    buffer.put(readings(0, 3))
    last = buffer.take(0, 10)[-1][0]
    buffer.remove([(0, last)])
    die(buffer)  # nothing was committed to the card
    after_crash = Buffer(path)
    assert after_crash.take(0, 10) == []
    after_crash.close()
    reopened = Buffer(path)
    reopened.put(readings(3, 1))
    assert reopened.take(0, 10)[0][0] > last


def test_a_process_exiting_without_close_commits_and_removes_its_spool(
        path: Path, tmp_path: Path) -> None:
    code = ("import sys\nfrom edge.buffer import Buffer\nfrom fabcity.reading import Reading\n"
            "buffer = Buffer(sys.argv[1], spool_dir=sys.argv[2])\n"
            f"buffer.put([Reading('lab', 'pi', 'air', 'sequence', 7, {T0}, '1')])\n")
    spool_dir = tmp_path / "exit-shm"
    subprocess.run([sys.executable, "-c", code, str(path), str(spool_dir)], check=True,
                   timeout=30)
    assert on_card(path) == [7]
    assert list(spool_dir.iterdir()) == []


def test_a_second_buffer_on_the_same_file_is_refused_until_the_first_closes(path: Path) -> None:
    first = Buffer(path)
    with pytest.raises(ConfigError, match=rf"in use by another buffer \(process {os.getpid()}\)"):
        Buffer(path)
    first.close()
    Buffer(path).close()


def test_a_killed_owner_leaves_no_lock_behind(path: Path) -> None:
    code = ("import os, sys\nfrom edge.buffer import Buffer\nBuffer(sys.argv[1])\n"
            "os.kill(os.getpid(), 9)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], timeout=30, check=False)
    assert done.returncode == -9
    Buffer(path).close()
