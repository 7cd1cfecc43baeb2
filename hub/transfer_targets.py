"""The pieces export and import share: retries, refusal isolation, checkpoints, targets.

A target holds what it was given durably once ``commit`` returns; the checkpoint moves only
after that (see :mod:`hub.transfer`).
"""

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from tqdm import tqdm

from fabcity.errors import ConfigError, FabcityError, ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading, format_ts
from hub.storage.base import Storage
from hub.transfer_formats import FileFormat, encode, header

__all__ = [
    "RETRY_DELAYS_S",
    "Checkpoint",
    "FileTarget",
    "Retry",
    "StorageTarget",
    "Target",
    "TransferError",
    "say",
    "write_isolating",
]

RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)

T = TypeVar("T")

class TransferError(FabcityError, RuntimeError):
    """An export or import stopped; what was written and checkpointed stays."""


def say(message: str) -> None:
    """A line on stderr that does not tear the progress bar."""
    tqdm.write(message, file=sys.stderr)


@dataclass
class Retry:
    """Retries ``StorageUnavailable`` with backoff, then stops with the resume hint."""

    delays_s: Sequence[float] = RETRY_DELAYS_S
    hint: str = "run the same command with --resume to continue"
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, what: str, action: Callable[[], T]) -> T:
        for delay in self.delays_s:
            try:
                return action()
            except StorageUnavailable as exc:
                say(f"{what}: {exc}; retrying in {delay:g} s")
                self.sleep(delay)
        try:
            return action()
        except StorageUnavailable as exc:
            raise TransferError(f"{what}: {exc}; gave up after {len(self.delays_s) + 1} "
                                f"attempts. What was written is kept: {self.hint}") from exc


def write_isolating(storage: Storage, items: Sequence[tuple[T, Reading]], retry: Retry,
                    refused: Callable[[T, Reading, str], None]) -> int | None:
    """Write ``(tag, reading)`` pairs; a refused batch is halved until each refused reading is
    alone, reported with its tag (a line number, say). Returns the new count, as ``write``."""
    if not items:
        return 0
    try:
        return retry(f"writing to {storage.describe()}",
                     lambda: storage.write([reading for _, reading in items]))
    except ReadingsRefused as exc:
        if len(items) == 1:
            refused(items[0][0], items[0][1], exc.reason)
            return 0
        half = len(items) // 2
        first = write_isolating(storage, items[:half], retry, refused)
        second = write_isolating(storage, items[half:], retry, refused)
        return None if first is None or second is None else first + second


@dataclass
class Checkpoint:
    """Where a run stands, as JSON replaced atomically; ``path=None`` keeps none (stdio)."""

    path: Path | None

    def load(self, resume: bool) -> dict[str, Any] | None:
        """The saved state when resuming; refuses a stale checkpoint when not."""
        if self.path is None:
            if resume:
                raise ConfigError("--resume needs a file: standard input and output keep no "
                                  "checkpoint")
            return None
        if not resume:
            if self.path.exists():
                raise ConfigError(f"checkpoint {self.path} exists: an earlier run stopped before "
                                  f"the end. Pass --resume to continue it, or delete "
                                  f"{self.path} to start over")
            return None
        try:
            state: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--resume: no checkpoint at {self.path}, nothing to resume "
                              "(--checkpoint names another one)") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"checkpoint {self.path} is unreadable ({exc}); delete it to "
                              "start over") from None
        return state

    def save(self, state: dict[str, Any]) -> None:
        if self.path is None:
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w") as out:
            json.dump(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class Target:
    """Where an export writes. ``commit`` makes what was written durable and returns what a
    resumed run needs to continue from exactly there."""

    name: str = "target"
    refused: int = 0  # readings the target refused for good (reported as they happen)

    def start(self) -> None:
        """Begin a new export."""

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from a committed state."""

    def write(self, readings: list[Reading]) -> None:
        raise NotImplementedError

    def commit(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Release the target; safe to call twice."""


class StorageTarget(Target):
    """Another storage back-end; ``write`` returning means durable, so ``commit`` is free."""

    def __init__(self, storage: Storage, retry: Retry | None = None, name: str = "") -> None:
        self.storage = storage
        self.name = name or storage.describe()
        self.retry = retry or Retry()
        self.new: int | None = 0
        self.refused = 0

    def _refused(self, _tag: None, r: Reading, reason: str) -> None:
        self.refused += 1
        say(f"refused by {self.name}: {r.site}/{r.device}/{r.sensor}/{r.metric} at "
             f"{format_ts(r.ts_ms)} value {r.value!r}: {reason}")

    def write(self, readings: list[Reading]) -> None:
        stored = write_isolating(self.storage, [(None, r) for r in readings], self.retry,
                                 self._refused)
        self.new = None if stored is None or self.new is None else self.new + stored

    def close(self) -> None:
        self.storage.close()


class FileTarget(Target):
    """A CSV or line-protocol file (``-``: standard output, not resumable)."""

    def __init__(self, path: str, fmt: FileFormat) -> None:
        self.name, self.fmt = path, fmt
        self._out: BinaryIO | None = None

    def start(self) -> None:
        self._out = sys.stdout.buffer if self.name == "-" else open(self.name, "wb")  # noqa: SIM115
        self._out.write(header(self.fmt))

    def resume(self, state: dict[str, Any]) -> None:
        offset = int(state["offset"])
        try:
            out = open(self.name, "r+b")  # noqa: SIM115
        except OSError as exc:
            raise TransferError(f"cannot resume into {self.name}: {exc}") from None
        if os.fstat(out.fileno()).st_size < offset:
            out.close()
            raise TransferError(f"{self.name} is shorter than its checkpoint says ({offset} "
                                "bytes): delete the checkpoint and export again")
        out.truncate(offset)  # drop a window written after the last checkpoint
        out.seek(offset)
        self._out = out

    def write(self, readings: list[Reading]) -> None:
        assert self._out is not None, "start() or resume() first"
        self._out.write(encode(self.fmt, readings))

    def commit(self) -> dict[str, Any]:
        assert self._out is not None, "start() or resume() first"
        self._out.flush()
        if self.name == "-":
            return {}
        os.fsync(self._out.fileno())
        return {"offset": self._out.tell()}

    def close(self) -> None:
        if self._out is not None and self.name != "-":
            self._out.close()
        self._out = None


