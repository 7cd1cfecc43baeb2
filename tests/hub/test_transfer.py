"""``fabcity hub export`` / ``import``: every reading arrives once, through crashes and bad rows.

Real SQLite storages throughout; faults are injected by subclassing the real storage or file
target, so what gets written is what a real run writes.
"""

import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from fabcity.cli import main
from fabcity.errors import ConfigError, ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading, now_ms
from hub.storage.base import HOUR_MS, ReadingQuery, Storage
from hub.storage.sqlite import SqliteStorage
from hub.transfer import (
    Checkpoint,
    FileTarget,
    Retry,
    Selection,
    StorageTarget,
    TransferError,
    export_readings,
    import_readings,
)
from hub.transfer_formats import CSV_COLUMNS, encode
from tests.hub.storage.backends import open_sqlite
from tests.servers import InfluxDB1

START_MS = 1_780_000_000_000  # 2026-05-28
NO_WAIT = Retry(delays_s=(0, 0), sleep=lambda _s: None)
EVERYTHING = Selection(0, 4_000_000_000_000)


def _readings(count: int = 3_000) -> list[Reading]:
    """Several series (catalogued and free metrics, with and without flags), uneven gaps."""
    series = [("lab", "pi-laser", "bme280", "temperature", None),
              ("lab", "pi-laser", "bme280", "humidity", None),
              ("lab", "pi-door", "sds011", "pm2_5", None),
              ("city-hall", "pi-1", "mpu6050", "vibration", "mm/s"),
              ("city-hall", "pi-1", "scd30", "co2", "ppm")]
    out = []
    for i in range(count):
        site, device, sensor, metric, unit = series[i % len(series)]
        flags: tuple[str, ...] = (("suspect_humidity",) if i % 97 == 0
                                  else ("warmup", "clipped") if i % 89 == 0 else ())
        ts = START_MS + (i // len(series)) * 61_000 + (i * 7919) % 1000
        out.append(Reading(site, device, sensor, metric, (i * 0.37) % 50 - 5, ts, unit, flags))
    return out


def _all(storage: Storage) -> list[Reading]:
    return storage.raw(ReadingQuery(0, 4_000_000_000_000, limit=10_000_000))


@pytest.fixture
def source(tmp_path: Path) -> SqliteStorage:
    storage = open_sqlite(tmp_path, "source")
    storage.write(_readings())
    return storage


def _toml(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[storage]\nbackend = "sqlite"\npath = "{tmp_path / name}.db"\n'
                    'synchronous = "normal"\n')
    return path


def test_sqlite_to_sqlite_copy_equals_the_source(source: SqliteStorage, tmp_path: Path) -> None:
    target = open_sqlite(tmp_path, "target")
    checkpoint = Checkpoint(tmp_path / "copy.checkpoint")
    result = export_readings(source, StorageTarget(target), EVERYTHING, checkpoint)
    assert result.readings == 3_000
    assert _all(target) == _all(source)
    assert not checkpoint.path.exists()  # type: ignore[union-attr]


def test_windows_that_come_back_full_are_halved_until_complete(
    source: SqliteStorage, tmp_path: Path
) -> None:
    # Twelve readings in one millisecond: more than the limit, so that window's limit grows.
    crowd = [Reading("lab", f"pi-{i}", "bme280", "temperature", float(i), START_MS + 5)
             for i in range(12)]
    source.write(crowd)
    target = open_sqlite(tmp_path, "target")
    result = export_readings(source, StorageTarget(target), EVERYTHING,
                             Checkpoint(tmp_path / "cp"), limit=7)
    assert result.windows > 3_000 / 7
    assert _all(target) == _all(source)


def test_csv_round_trip_through_the_command_line(source: SqliteStorage, tmp_path: Path) -> None:
    future = Reading("lab", "pi-laser", "bme280", "temperature", 21.5, now_ms() + 3_600_000)
    source.write([future])  # after "now": the default range still takes it
    out = tmp_path / "all.csv"
    assert main(["hub", "export", "-c", str(_toml(tmp_path, "source")), "--csv", str(out)]) == 0
    assert out.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    assert main(["hub", "import", "-c", str(_toml(tmp_path, "copy")), "--csv", str(out)]) == 0
    copy = SqliteStorage(tmp_path / "copy.db")
    assert _all(copy) == _all(source)
    assert len(_all(copy)) == 3_001


def test_csv_is_the_api_csv(source: SqliteStorage) -> None:
    from hub.api.serialise import CSV_COLUMNS as API_COLUMNS
    from hub.api.serialise import csv_rows, ts_formatter

    readings = _all(source)[:200]
    assert CSV_COLUMNS == API_COLUMNS
    assert encode("csv", readings).decode() == csv_rows(readings, ts_formatter())


def test_line_protocol_round_trip(source: SqliteStorage, tmp_path: Path) -> None:
    out = tmp_path / "all.lp"
    export_readings(source, FileTarget(str(out), "line-protocol"), EVERYTHING,
                    Checkpoint(tmp_path / "export.cp"))
    lines = out.read_text().splitlines()
    assert len(lines) == 3_000
    assert ('temperature,site=lab,device=pi-laser,sensor=bme280,unit=degC '
            'value=-5.0,flags="suspect_humidity" 1780000000000') in lines
    target = open_sqlite(tmp_path, "target")
    result = import_readings(target, str(out), "line-protocol", Checkpoint(tmp_path / "in.cp"))
    assert (result.imported, result.new, result.rejected) == (3_000, 3_000, {})
    assert _all(target) == _all(source)


class CrashingSqlite(SqliteStorage):
    """A real SQLite storage whose process 'dies' on the n-th write."""

    def __init__(self, path: Path, crash_on_write: int) -> None:
        super().__init__(path, synchronous="normal")
        self.writes, self.crash_on_write = 0, crash_on_write

    def write(self, readings: Sequence[Reading]) -> int:
        self.writes += 1
        if self.writes == self.crash_on_write:
            raise RuntimeError("power cut")
        return super().write(readings)


def test_a_storage_export_resumes_after_a_crash(source: SqliteStorage, tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "copy.checkpoint")
    with pytest.raises(RuntimeError, match="power cut"):
        export_readings(source, StorageTarget(CrashingSqlite(tmp_path / "t.db", 5)), EVERYTHING,
                        checkpoint, limit=100)
    partial = SqliteStorage(tmp_path / "t.db")
    assert 0 < partial.count() < 3_000
    with pytest.raises(ConfigError, match="Pass --resume to continue it, or delete"):
        export_readings(source, StorageTarget(partial), EVERYTHING, checkpoint, limit=100)
    result = export_readings(source, StorageTarget(partial), EVERYTHING, checkpoint,
                             resume=True, limit=100)
    assert result.readings == 3_000  # counted over both runs
    assert _all(partial) == _all(source)
    assert partial.count() == 3_000


class CrashingFile(FileTarget):
    """A file target that dies halfway through writing its n-th window."""

    def __init__(self, path: Path, crash_on_window: int) -> None:
        super().__init__(str(path), "csv")
        self.windows, self.crash_on_window = 0, crash_on_window

    def write(self, readings: list[Reading]) -> None:
        self.windows += 1
        if self.windows == self.crash_on_window:
            super().write(readings[: len(readings) // 2])
            assert self._out is not None
            self._out.flush()
            raise RuntimeError("power cut")
        super().write(readings)


@pytest.mark.parametrize("crash_on_window", [1, 4])
def test_a_file_export_resumes_with_each_reading_exactly_once(
    source: SqliteStorage, tmp_path: Path, crash_on_window: int
) -> None:
    out = tmp_path / "all.csv"
    checkpoint = Checkpoint(tmp_path / "all.csv.checkpoint")
    with pytest.raises(RuntimeError, match="power cut"):
        export_readings(source, CrashingFile(out, crash_on_window), EVERYTHING, checkpoint,
                        limit=300)
    if crash_on_window == 1:  # nothing was committed: no checkpoint, start over
        assert not checkpoint.path.exists()  # type: ignore[union-attr]
    export_readings(source, FileTarget(str(out), "csv"), EVERYTHING, checkpoint,
                    resume=crash_on_window > 1, limit=300)
    lines = out.read_text().splitlines()
    assert lines.count(",".join(CSV_COLUMNS)) == 1
    rows = Counter(lines[1:])
    assert set(rows.values()) == {1}
    assert rows.keys() == set(encode("csv", _all(source)).decode().splitlines())


def test_an_import_resumes_after_a_crash(source: SqliteStorage, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    export_readings(source, FileTarget(str(out), "csv"), EVERYTHING, Checkpoint(None))
    with out.open("a") as f:
        f.write("lab,pi-laser,bme280,temperature,yesterday,1.0,degC,\n")
    checkpoint = Checkpoint(tmp_path / "in.cp")
    with pytest.raises(RuntimeError, match="power cut"):
        import_readings(CrashingSqlite(tmp_path / "t.db", 3), str(out), "csv", checkpoint,
                        chunk=500)
    target = SqliteStorage(tmp_path / "t.db")
    assert target.count() == 1_000
    result = import_readings(target, str(out), "csv", checkpoint, resume=True, chunk=500)
    assert (result.imported, result.rejected) == (3_000, {"bad_timestamp": 1})
    assert _all(target) == _all(source)


def test_bad_csv_rows_are_reported_by_line_and_the_rest_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join([
        ",".join(CSV_COLUMNS),
        "lab,pi-1,bme280,temperature,2026-05-28T10:00:00.000Z,21.5,degC,",
        "lab,pi-1,bme280,temperature,yesterday,21.5,degC,",
        "lab,pi-1,bme280,temperature,2026-05-28T10:01:00.000Z,warm,degC,",
        "lab,pi-1,bme280,temperature,2026-05-28T10:02:00.000Z,21.5",
        "lab,Pi 1,bme280,temperature,2026-05-28T10:03:00.000Z,21.5,degC,",
        "",
        "lab,pi-1,bme280,temperature,2026-05-28T10:04:00.000Z,21.7,degC,warmup",
        "lab,pi-1,bme280,temperature,2026-05-28T10:05:00.000Z,nan,degC,",
    ]) + "\n")
    assert main(["hub", "import", "-c", str(_toml(tmp_path, "hub")), "--csv", str(rows)]) == 1
    err = capsys.readouterr().err
    assert f"{rows}:3: bad_timestamp: invalid timestamp 'yesterday'" in err
    assert f"{rows}:4: bad_value: value 'warm' is not a number" in err
    assert f"{rows}:5: bad_row: expected 8 columns, got 6" in err
    assert f"{rows}:6: bad_name:" in err
    assert f"{rows}:9: bad_value: value must be finite" in err
    summary = err.splitlines()[-1]
    assert summary == (f"imported 2 readings from {rows} (2 new); rejected 5 (bad_name 1, "
                       "bad_row 1, bad_timestamp 1, bad_value 2)")
    stored = _all(SqliteStorage(tmp_path / "hub.db"))
    assert [(r.value, r.flags) for r in stored] == [(21.5, ()), (21.7, ("warmup",))]


class PickySqlite(SqliteStorage):
    """Refuses, for good, any batch holding a negative value (as InfluxDB refuses a type)."""

    def write(self, readings: Sequence[Reading]) -> int:
        if any(r.value < 0 for r in readings):
            raise ReadingsRefused("negative values refused")
        return super().write(readings)


def test_refused_readings_are_isolated_and_reported_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"temperature,device=pi-1,sensor=bme280,site=lab value={v} {START_MS + i}"
             for i, v in enumerate([1.0, 2.0, -3.0, 4.0, 5.0, -6.0, 7.0])]
    path = tmp_path / "in.lp"
    path.write_text("# exported by hand\n" + "\n".join(lines) + "\n")
    target = PickySqlite(tmp_path / "t.db")
    result = import_readings(target, str(path), "line-protocol", Checkpoint(None))
    assert (result.imported, result.rejected) == (5, {"refused": 2})
    err = capsys.readouterr().err
    assert f"{path}:4: refused:" in err and f"{path}:7: refused:" in err
    assert "negative values refused" in err
    assert [r.value for r in _all(target)] == [1.0, 2.0, 4.0, 5.0, 7.0]


class FlakySqlite(SqliteStorage):
    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path, synchronous="normal")
        self.failures = failures

    def write(self, readings: Sequence[Reading]) -> int:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("database is locked")
        return super().write(readings)


def test_an_unavailable_storage_is_retried_then_the_run_stops_with_the_resume_hint(
    source: SqliteStorage, tmp_path: Path
) -> None:
    target = FlakySqlite(tmp_path / "t.db", failures=2)
    export_readings(source, StorageTarget(target, NO_WAIT), EVERYTHING, Checkpoint(None))
    assert _all(target) == _all(source)
    down = FlakySqlite(tmp_path / "down.db", failures=10**6)
    with pytest.raises(TransferError, match=r"gave up after 3 attempts.*--resume"):
        export_readings(source, StorageTarget(down, Retry((0, 0), sleep=lambda _s: None,
                                                          hint="use --resume")),
                        EVERYTHING, Checkpoint(None))


def test_an_existing_checkpoint_needs_resume_or_deleting(
    source: SqliteStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "all.lp"
    (tmp_path / "all.lp.checkpoint").write_text("{}")
    argv = ["hub", "export", "-c", str(_toml(tmp_path, "source")), "--line-protocol", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {out}.checkpoint exists" in err
    assert "Pass --resume to continue it, or delete" in err
    assert not out.exists()  # refused before touching the file


@pytest.mark.parametrize(("extra", "message"), [
    (["--start", "last tuesday"], "command line: --start: invalid time 'last tuesday'"),
    (["--start", "-1d", "--end", "-2d"], "is after --end"),
    (["--resume", "--csv", "-"], "--resume needs a file"),
    (["--to-config", "SOURCE"], "names the same storage"),
    (["--resume", "--csv", "none.csv"], "no checkpoint at none.csv.checkpoint"),
])
def test_export_errors_say_what_to_do(
    source: SqliteStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    extra: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = str(_toml(tmp_path, "source"))
    argv = ["hub", "export", "-c", config] + [config if a == "SOURCE" else a for a in extra]
    if not any(a.startswith("--") and a in ("--csv", "--to-config") for a in extra):
        argv += ["--csv", "out.csv"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_csv_without_its_header_is_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("lab,pi-1,bme280,temperature,2026-05-28T10:00:00.000Z,21.5,degC,\n")
    assert main(["hub", "import", "-c", str(_toml(tmp_path, "hub")), "--csv", str(rows)]) == 2
    assert "the first line must name the columns site,device" in capsys.readouterr().err


def test_help_lists_the_targets_and_resume() -> None:
    done = subprocess.run([sys.executable, "-m", "fabcity", "hub", "export", "--help"],
                          capture_output=True, text=True, check=True)
    for option in ("--to-config", "--csv", "--line-protocol", "--resume", "--checkpoint",
                   "--quiet", "--start", "--site"):
        assert option in done.stdout
    done = subprocess.run([sys.executable, "-m", "fabcity", "hub", "import", "--help"],
                          capture_output=True, text=True, check=True)
    assert "--csv" in done.stdout and "--resume" in done.stdout


def test_export_needs_exactly_one_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["hub", "export"])
    assert exit_info.value.code == 2
    assert "one of the arguments --to-config --csv --line-protocol is required" in (
        capsys.readouterr().err)


def test_filters_and_range_select_what_is_exported(source: SqliteStorage, tmp_path: Path) -> None:
    target = open_sqlite(tmp_path, "target")
    selection = Selection(START_MS, START_MS + 10 * HOUR_MS, site="lab", metric="temperature")
    export_readings(source, StorageTarget(target), selection, Checkpoint(None))
    expected = [r for r in _all(source) if r.site == "lab" and r.metric == "temperature"
                and r.ts_ms < START_MS + 10 * HOUR_MS]
    assert _all(target) == expected and expected


def test_export_to_stdout_pipes_into_import_from_stdin(
    source: SqliteStorage, tmp_path: Path
) -> None:
    fabcity = [sys.executable, "-m", "fabcity", "hub"]
    exported = subprocess.run(
        [*fabcity, "export", "-c", str(_toml(tmp_path, "source")), "--line-protocol", "-"],
        capture_output=True, check=True)
    assert exported.stdout.count(b"\n") == 3_000
    assert "exported 3000 readings" in exported.stderr.decode()
    imported = subprocess.run(
        [*fabcity, "import", "-c", str(_toml(tmp_path, "copy")), "--line-protocol", "-"],
        input=exported.stdout, capture_output=True, check=True)
    assert "imported 3000 readings from - (3000 new)" in imported.stderr.decode()
    assert _all(SqliteStorage(tmp_path / "copy.db")) == _all(source)


@pytest.mark.integration
def test_sqlite_to_influxdb1_and_back_keeps_every_reading(
    source: SqliteStorage, tmp_path: Path, influxdb1: InfluxDB1, request: pytest.FixtureRequest
) -> None:
    from tests.hub.storage.backends import influx_name

    database = influx_name(request.node.name)
    influx = tmp_path / "influx.toml"
    influx.write_text(f'[storage]\nbackend = "influxdb1"\nurl = "{influxdb1.url}"\n'
                      f'database = "{database}"\n')
    argv = ["hub", "export", "-c", str(_toml(tmp_path, "source")), "--to-config", str(influx)]
    assert main(argv) == 0
    back = tmp_path / "back.toml"
    back.write_text(f'[storage]\nbackend = "sqlite"\npath = "{tmp_path / "back.db"}"\n')
    assert main(["hub", "export", "-c", str(influx), "--to-config", str(back)]) == 0
    assert _all(SqliteStorage(tmp_path / "back.db")) == _all(source)
