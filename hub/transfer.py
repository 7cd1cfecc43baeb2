"""``fabcity hub export`` and ``fabcity hub import``: move readings between storages and files.

Export reads the source in time windows (halved while one comes back full, since ``raw()``
stops at ``q.limit``; doubled again while they come back sparse) and writes each window to
the target. Import reads a CSV or line-protocol file in chunks, validating every row.

Both keep a checkpoint. The order is what makes resuming safe: the target holds a window
(or chunk) durably first (``Storage.write`` returned, or the file is flushed and fsynced), and
only then does the checkpoint move past it. A crash in between re-writes that one window on
``--resume``: a storage ignores the replay (writes are idempotent on the reading identity),
and a file is truncated back to the offset the checkpoint recorded before it is appended to.
"""

import os
import re
import stat
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from fabcity.errors import BadReading, ConfigError
from fabcity.reading import Reading, format_ts, now_ms, parse_ts
from hub.config import StorageConfig, load_hub_settings
from hub.storage.base import HOUR_MS, ReadingQuery, Storage, storage_class
from hub.transfer_formats import FileFormat, read_rows
from hub.transfer_targets import (
    Checkpoint,
    FileTarget,
    Retry,
    StorageTarget,
    Target,
    TransferError,
    say,
    write_isolating,
)

__all__ = [
    "Checkpoint",
    "ExportResult",
    "FileTarget",
    "ImportResult",
    "Retry",
    "Selection",
    "StorageTarget",
    "Target",
    "TransferError",
    "export_readings",
    "import_readings",
    "run_export",
    "run_import",
]

WINDOW_LIMIT = 10_000  # readings asked of raw() per window; a full answer halves the window
FIRST_WINDOW_MS = HOUR_MS
MAX_WINDOW_MS = 366 * 24 * HOUR_MS  # reached only across empty stretches
EMPTY_CHECKPOINT_INTERVAL_S = 5.0  # empty windows move the checkpoint at most this often
CHUNK_READINGS = 5_000  # readings per storage write (and checkpoint) on import
_UNITS_MS = {"s": 1_000, "m": 60_000, "h": HOUR_MS, "d": 24 * HOUR_MS, "w": 7 * 24 * HOUR_MS}
_RELATIVE_RE = re.compile(r"-([0-9]{1,9})([smhdw])")


# -- export ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What to export: ``[start_ms, end_ms)`` and the filters (``None`` matches all)."""

    start_ms: int
    end_ms: int
    site: str | None = None
    device: str | None = None
    metric: str | None = None

    def query(self, start_ms: int, end_ms: int, limit: int) -> ReadingQuery:
        return ReadingQuery(start_ms, end_ms, site=self.site, device=self.device,
                            metric=self.metric, limit=limit)


@dataclass
class ExportResult:
    """What an export did, over every run of it (resumed ones included)."""

    readings: int = 0
    windows: int = 0
    refused: int = 0


def _read_window(source: Storage, selection: Selection, start_ms: int, end_ms: int, limit: int,
                 retry: Retry) -> list[Reading] | None:
    """Every reading of the window, or ``None`` when it holds ``limit`` or more (halve it).
    A single millisecond cannot be halved: its limit doubles until the answer is complete."""
    what = f"reading from {source.describe()}"
    found = retry(what, partial(source.raw, selection.query(start_ms, end_ms, limit)))
    if len(found) < limit:
        return found
    if end_ms - start_ms > 1:
        return None
    while len(found) >= limit:
        limit *= 2
        found = retry(what, partial(source.raw, selection.query(start_ms, end_ms, limit)))
    return found


@contextmanager
def _bar(total: float, initial: float, unit: str, quiet: bool, **options: Any) -> Iterator[tqdm]:
    bar = tqdm(total=total, initial=initial, unit=unit, file=sys.stderr, dynamic_ncols=True,
               disable=quiet or not sys.stderr.isatty(), **options)
    try:
        yield bar
    finally:
        bar.close()


def _resumed(state: dict[str, Any], selection: Selection, target: Target,
             checkpoint: Checkpoint) -> tuple[Selection, int, ExportResult]:
    """Range, position and totals saved by an interrupted export of the same filters."""
    try:
        saved = Selection(**state["selection"])
        position = (saved, int(state["done_ms"]), ExportResult(**state["result"]))
        name = state["target_name"]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"checkpoint {checkpoint.path} is not an export checkpoint; delete "
                          "it to start over") from None
    given = (selection.site, selection.device, selection.metric)
    if name != target.name or given != (saved.site, saved.device, saved.metric):
        raise ConfigError(f"checkpoint {checkpoint.path} belongs to another export (to {name}, "
                          f"site {saved.site}, device {saved.device}, metric {saved.metric}): "
                          "give the same target and filters, or delete it to start over")
    return position


def export_readings(source: Storage, target: Target, selection: Selection,
                    checkpoint: Checkpoint, *, resume: bool = False, limit: int = WINDOW_LIMIT,
                    retry: Retry | None = None, quiet: bool = True) -> ExportResult:
    """Copy the selected raw readings of ``source`` to ``target``, window by window.

    Resuming takes the range and filters from the checkpoint (and refuses other filters).
    """
    retry = retry or Retry()
    state = checkpoint.load(resume)
    if state is None:
        result, at = ExportResult(), selection.start_ms
        target.start()
        committed = target.commit()
    else:
        selection, at, result = _resumed(state, selection, target, checkpoint)
        target.resume(state["target"])
        committed = state["target"]
    refused_before = result.refused
    saved_at = time.monotonic()
    size = FIRST_WINDOW_MS
    with _bar(max(selection.end_ms - selection.start_ms, 0) / HOUR_MS,
              max(at - selection.start_ms, 0) / HOUR_MS, "h", quiet,
              bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} h [{elapsed}<{remaining}{postfix}]",
              ) as bar:
        bar.set_postfix_str(f"{result.readings:,} readings")
        while at < selection.end_ms:
            end = min(at + size, selection.end_ms)
            found = _read_window(source, selection, at, end, limit, retry)
            if found is None:
                size = max(1, (end - at) // 2)
                continue
            if found:
                target.write(found)
                # Durable in the target before the checkpoint moves past the window.
                committed = target.commit()
                result.readings += len(found)
                result.windows += 1
                result.refused = refused_before + target.refused
            if found or time.monotonic() - saved_at >= EMPTY_CHECKPOINT_INTERVAL_S:
                checkpoint.save({"kind": "export", "target_name": target.name,
                                 "done_ms": end, "selection": asdict(selection),
                                 "result": asdict(result), "target": committed})
                saved_at = time.monotonic()
            bar.update((end - at) / HOUR_MS)
            bar.set_postfix_str(f"{result.readings:,} readings")
            at = end
            if len(found) < limit // 4:
                size = min(size * 2, MAX_WINDOW_MS)
    checkpoint.remove()
    return result


# -- import ----------------------------------------------------------------------------------

@dataclass
class ImportResult:
    """What an import did, over every run of it (resumed ones included)."""

    imported: int = 0
    new: int | None = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> rows

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def import_readings(storage: Storage, path: str, fmt: FileFormat, checkpoint: Checkpoint, *,
                    resume: bool = False, chunk: int = CHUNK_READINGS,
                    retry: Retry | None = None, quiet: bool = True) -> ImportResult:
    """Validate the rows of ``path`` (``-``: standard input) and write them to ``storage`` in
    chunks; a bad row is reported with its line number and skipped."""
    retry = retry or Retry()
    state = checkpoint.load(resume)
    result, offset, line_no = ImportResult(), 0, 0
    if state is not None:
        if state.get("kind") != "import" or state.get("format") != fmt:
            raise ConfigError(f"checkpoint {checkpoint.path} belongs to another transfer "
                              f"({state.get('kind')} of {state.get('format')}); delete it to "
                              "start over")
        offset, line_no = int(state["offset"]), int(state["line"])
        result = ImportResult(**state["result"])
    rejected = Counter(result.rejected)

    def reject(line: int, reason: str, message: str) -> None:
        rejected[reason] += 1
        say(f"{path}:{line}: {reason}: {message}")

    def refused(line: int, r: Reading, reason: str) -> None:
        reject(line, "refused", f"{r.site}/{r.device}/{r.sensor}/{r.metric} at "
                                f"{format_ts(r.ts_ms)}: the storage refused it: {reason}")

    stream = sys.stdin.buffer if path == "-" else _open_input(path)
    mode = os.fstat(stream.fileno()).st_mode
    size = os.fstat(stream.fileno()).st_size if stat.S_ISREG(mode) else None
    pending: list[tuple[int, Reading]] = []
    try:
        with _bar(size or 0, offset, "B", quiet, unit_scale=True, unit_divisor=1024) as bar:
            done = offset

            def flush(at_offset: int, at_line: int) -> None:
                nonlocal done
                before = rejected.total()
                stored = write_isolating(storage, pending, retry, refused)
                result.imported += len(pending) - (rejected.total() - before)
                result.new = None if stored is None or result.new is None else result.new + stored
                result.rejected = dict(rejected)
                pending.clear()
                # The storage holds the chunk: only now may the checkpoint move past it.
                checkpoint.save({"kind": "import", "file": path, "format": fmt,
                                 "offset": at_offset, "line": at_line,
                                 "result": asdict(result)})
                bar.update(at_offset - done)
                bar.set_postfix_str(f"{result.imported:,} readings")
                done = at_offset

            rows = _rows(fmt, stream, offset, line_no, path)
            for line_no, offset, row in rows:
                if isinstance(row, BadReading):
                    reject(line_no, row.reason, str(row))
                    continue
                pending.append((line_no, row))
                if len(pending) >= chunk:
                    flush(offset, line_no)
            flush(offset, line_no)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    checkpoint.remove()
    return result


def _open_input(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _rows(fmt: FileFormat, stream: BinaryIO, offset: int, line_no: int,
          path: str) -> Iterator[tuple[int, int, Reading | BadReading]]:
    try:
        yield from read_rows(fmt, stream, offset, line_no)
    except BadReading as exc:  # a CSV without the header: nothing can be read
        raise ConfigError(f"{path}: {exc}") from None


# -- the commands ----------------------------------------------------------------------------

def _instant(option: str, text: str, now: int) -> int:
    match = _RELATIVE_RE.fullmatch(text)
    if text == "now":
        return now
    if match is not None:
        return now - int(match[1]) * _UNITS_MS[match[2]]
    try:
        return parse_ts(text)
    except BadReading:
        raise ConfigError(f"command line: {option}: invalid time {text!r}: expected RFC 3339 "
                          "with an offset (e.g. 2026-11-26T22:05:00Z), a relative duration "
                          "(e.g. -30d, -12h) or now") from None


def _open_storage(config: StorageConfig) -> Storage:
    return storage_class(config.backend).from_options(config.options())


def _same_storage(a: StorageConfig, b: StorageConfig) -> bool:
    if a.backend != b.backend:
        return False
    if a.path is not None and b.path is not None:
        return a.path.resolve() == b.path.resolve()
    return a.options().model_dump() == b.options().model_dump()


def _selection(source: Storage, start: str | None, end: str | None, site: str | None,
               device: str | None, metric: str | None) -> Selection:
    """The range asked for; by default from the oldest reading to just after the newest."""
    now = now_ms()
    start_ms = _instant("--start", start, now) if start else source.first_ms()
    if end:
        end_ms = _instant("--end", end, now)
    else:
        newest = [r.ts_ms for r in source.latest(site=site, device=device, metric=metric)]
        end_ms = max([now, *newest]) + 1
    if start_ms is None:  # an empty source
        start_ms = end_ms
    if start_ms > end_ms:
        raise ConfigError(f"command line: --start {format_ts(start_ms)} is after --end "
                          f"{format_ts(end_ms)}")
    return Selection(start_ms, end_ms, site, device, metric)


def run_export(*, config: Path | None, to_config: Path | None, csv: str | None,
               line_protocol: str | None, start: str | None = None, end: str | None = None,
               site: str | None = None, device: str | None = None, metric: str | None = None,
               resume: bool = False, checkpoint: Path | None = None,
               quiet: bool = False) -> int:
    """``fabcity hub export``: 0 when every reading was copied, 1 when the target refused some."""
    settings = load_hub_settings(config)
    target: Target
    if to_config is not None:
        other = load_hub_settings(to_config).storage
        if _same_storage(settings.storage, other):
            raise ConfigError(f"{to_config} names the same storage as "
                              f"{config or 'the default configuration'}: nothing to copy")
        name = str(to_config)
        target = StorageTarget(_open_storage(other), name=name)
    else:
        name = csv or line_protocol or "-"
        target = FileTarget(name, "csv" if csv else "line-protocol")
    source = _open_storage(settings.storage)
    try:
        selection = _selection(source, start, end, site, device, metric)
        cp = Checkpoint(None if name == "-" else checkpoint or Path(f"{name}.checkpoint"))
        result = export_readings(source, target, selection, cp, resume=resume, quiet=quiet,
                                 retry=Retry(hint=_hint("export", cp)))
    finally:
        target.close()
        source.close()
    new = target.new if isinstance(target, StorageTarget) else None
    say(f"exported {result.readings} readings in {result.windows} windows to {name}"
         + (f" ({new} new there)" if new is not None else "")
         + (f"; {result.refused} refused by the target (listed above)" if result.refused else ""))
    return 1 if result.refused else 0


def run_import(*, config: Path | None, csv: str | None, line_protocol: str | None,
               resume: bool = False, checkpoint: Path | None = None, quiet: bool = False) -> int:
    """``fabcity hub import``: 0 when every row was imported, 1 when some were rejected."""
    settings = load_hub_settings(config)
    path = csv or line_protocol or "-"
    cp = Checkpoint(None if path == "-" else checkpoint or Path(f"{path}.checkpoint"))
    storage = _open_storage(settings.storage)
    try:
        result = import_readings(storage, path, "csv" if csv else "line-protocol", cp,
                                 resume=resume, quiet=quiet,
                                 retry=Retry(hint=_hint("import", cp)))
    finally:
        storage.close()
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(result.rejected.items()))
    say(f"imported {result.imported} readings from {path}"
         + (f" ({result.new} new)" if result.new is not None else "")
         + (f"; rejected {result.rejected_total} ({reasons})" if result.rejected else ""))
    return 1 if result.rejected_total else 0


def _hint(command: str, checkpoint: Checkpoint) -> str:
    if checkpoint.path is None:
        return f"{command} again (standard input and output cannot resume)"
    return (f"the checkpoint is {checkpoint.path}; run the same command with --resume to "
            "continue")
