"""Ingest workers: stable client ids, and one process per client id on a machine."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from fabcity.errors import ConfigError
from hub.filelock import FileLock
from hub.housekeeping import Housekeeping
from hub.workers import WORKER_ID_ENV, claim_client_id, resolve_worker_id, worker_client_id


def test_worker_id_from_option_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKER_ID_ENV, raising=False)
    assert resolve_worker_id(None) is None
    assert worker_client_id("fabcity-hub", None) == "fabcity-hub"
    monkeypatch.setenv(WORKER_ID_ENV, "2")
    assert worker_client_id("fabcity-hub", resolve_worker_id(None)) == "fabcity-hub-2"
    assert resolve_worker_id("hub-b") == "hub-b"
    with pytest.raises(ConfigError, match="command line: --worker-id: worker id 'a/b'"):
        resolve_worker_id("a/b")


def test_a_second_ingest_with_one_client_id_is_refused_saying_what_to_do(
    tmp_path: Path,
) -> None:
    first = claim_client_id(tmp_path, "fabcity-hub")
    with pytest.raises(ConfigError, match=r"--worker-id N \(or FABCITY_WORKER_ID=N\)"):
        claim_client_id(tmp_path, "fabcity-hub")
    claim_client_id(tmp_path, "fabcity-hub-1").release()  # another id: no conflict
    first.release()
    claim_client_id(tmp_path, "fabcity-hub").release()


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from hub.filelock import FileLock; "
        f"assert FileLock(Path({str(tmp_path / 'x.lock')!r})).try_acquire(); "
        "print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"held\n"
    lock = FileLock(tmp_path / "x.lock")
    assert not lock.try_acquire()
    holder.kill()
    holder.wait(10)
    assert lock.try_acquire()
    lock.release()


class _Part:
    def __init__(self) -> None:
        self.running = False

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False


def test_one_process_runs_rollups_and_forwarders_another_takes_over(tmp_path: Path) -> None:
    first_parts, second_parts = (_Part(), _Part()), (_Part(), _Part())
    first = Housekeeping(tmp_path / "state.db.housekeeping.lock", first_parts[0],  # type: ignore[arg-type]
                         [first_parts[1]], retry_s=0.05)  # type: ignore[list-item]
    second = Housekeeping(tmp_path / "state.db.housekeeping.lock", second_parts[0],  # type: ignore[arg-type]
                          [second_parts[1]], retry_s=0.05)  # type: ignore[list-item]
    first.start()
    second.start()
    time.sleep(0.2)
    assert first.running and all(p.running for p in first_parts)
    assert not second.running and not any(p.running for p in second_parts)
    first.stop()
    assert not any(p.running for p in first_parts)
    deadline = time.monotonic() + 5
    while not second.running:
        assert time.monotonic() < deadline, "the standby never took over"
        time.sleep(0.02)
    assert all(p.running for p in second_parts)
    second.stop()
