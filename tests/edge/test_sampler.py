"""The sampler: per-sensor intervals, failing sensors isolated, errors counted, open retried."""

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edge.config import SensorConfig
from edge.drivers.base import EventDriver, NoOptions, PolledDriver, Sample
from edge.sampler import Sampler, SensorStats, to_readings
from fabcity.errors import DriverError
from fabcity.logs import RateLimit
from fabcity.reading import Reading


class FakeDriver(PolledDriver):
    """Counts its reads; fails to open ``open_failures`` times; fails reads while ``broken``."""

    METRICS = {"count": "1", "temperature": "degC"}

    def __init__(self, name: str, open_failures: int = 0, broken: bool = False) -> None:
        super().__init__(SensorConfig(driver="fake", name=name), NoOptions())
        self.open_failures = open_failures
        self.broken = broken
        self.reads: list[float] = []
        self.closed = False

    def open(self) -> None:
        if self.open_failures > 0:
            self.open_failures -= 1
            raise DriverError(f"{self.name}: no such device")

    def read(self) -> list[Sample]:
        self.reads.append(time.monotonic())
        if self.broken:
            raise DriverError(f"{self.name}: timed out")
        return [Sample("count", len(self.reads))]

    def close(self) -> None:
        self.closed = True


class Sink:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.lock = threading.Lock()

    def __call__(self, readings: list[Reading]) -> None:
        with self.lock:
            self.readings.extend(readings)

    def of(self, sensor: str) -> list[Reading]:
        with self.lock:
            return [r for r in self.readings if r.sensor == sensor]


def wait_for(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def sampler(sink: Sink) -> Iterator[Sampler]:
    sampler = Sampler("lab", "pi", sink)
    yield sampler
    sampler.stop(timeout_s=2)


def test_each_sensor_is_read_at_its_own_interval(sampler: Sampler, sink: Sink) -> None:
    fast, slow = FakeDriver("fast"), FakeDriver("slow")
    sampler.add(fast, interval_s=0.05)
    sampler.add(slow, interval_s=0.25)
    sampler.start()
    time.sleep(1.0)
    sampler.stop()
    assert 12 <= len(fast.reads) <= 23  # ~21 reads in 1 s at 50 ms
    assert 4 <= len(slow.reads) <= 6
    gaps = [b - a for a, b in zip(fast.reads, fast.reads[1:], strict=False)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.05, abs=0.015)  # no drift
    assert [r.value for r in sink.of("fast")] == list(range(1, len(fast.reads) + 1))
    assert sampler.stats["fast"].readings == len(fast.reads)


def test_readings_carry_site_device_sensor_and_unit(sampler: Sampler, sink: Sink) -> None:
    sampler.add(FakeDriver("meter"), interval_s=10)
    sampler.start()
    wait_for(lambda: bool(sink.readings))
    (reading,) = sink.readings
    assert (reading.site, reading.device, reading.sensor) == ("lab", "pi", "meter")
    assert (reading.metric, reading.value, reading.unit) == ("count", 1.0, "1")
    assert abs(reading.ts_ms - time.time() * 1000) < 5000


def test_a_failing_sensor_does_not_stop_the_others(sampler: Sampler, sink: Sink) -> None:
    broken, good = FakeDriver("broken", broken=True), FakeDriver("good")
    broken_stats = sampler.add(broken, interval_s=0.02)
    good_stats = sampler.add(good, interval_s=0.02)
    sampler.start()
    wait_for(lambda: good_stats.readings >= 10 and broken_stats.errors >= 10)
    assert broken_stats.readings == 0
    assert broken_stats.last_error == "DriverError: broken: timed out"
    assert good_stats.errors == 0 and good_stats.last_error is None
    assert sink.of("broken") == []


def test_a_sensor_that_recovers_reads_again_and_clears_its_error(
        sampler: Sampler, sink: Sink) -> None:
    driver = FakeDriver("flaky", broken=True)
    stats = sampler.add(driver, interval_s=0.02)
    sampler.start()
    wait_for(lambda: stats.errors >= 3)
    driver.broken = False
    wait_for(lambda: stats.readings >= 3)
    assert stats.last_error is None
    assert stats.last_reading_ms is not None


def test_open_is_retried_until_the_device_appears(sampler: Sampler, sink: Sink) -> None:
    driver = FakeDriver("late", open_failures=2)
    stats = sampler.add(driver, interval_s=0.01)
    sampler.start()
    wait_for(lambda: stats.readings >= 1)
    assert stats.errors == 2
    assert stats.last_error is None
    assert driver.reads  # reading began only after open succeeded


def test_bad_samples_are_counted_and_skipped_not_fatal() -> None:
    driver = FakeDriver("t")
    stats = SensorStats()
    readings = to_readings("lab", "pi", driver, [
        Sample("temperature", 21.5), Sample("temperature", float("nan")),
        Sample("Bad Metric", 1), Sample("count", 3, ts_ms=1_795_730_700_000),
    ], stats)
    assert [(r.metric, r.value) for r in readings] == [("temperature", 21.5), ("count", 3)]
    assert readings[1].ts_ms == 1_795_730_700_000
    assert readings[0].unit == "degC"
    assert stats.rejected == 2


def test_transform_runs_between_driver_and_sink(sampler: Sampler, sink: Sink) -> None:
    def double(readings: list[Reading]) -> list[Reading]:
        return [Reading(r.site, r.device, r.sensor, r.metric, r.value * 2, r.ts_ms, r.unit,
                        ("scaled",)) for r in readings]

    sampler.add(FakeDriver("scaled"), interval_s=10, transform=double)
    sampler.start()
    wait_for(lambda: bool(sink.readings))
    assert sink.readings[0].value == 2.0 and sink.readings[0].flags == ("scaled",)


class FakeEventDriver(EventDriver):
    METRICS = {"door_open": "bool"}

    def __init__(self) -> None:
        super().__init__(SensorConfig(driver="fake", name="door"), NoOptions())
        self.emit: Callable[[list[Sample]], None] | None = None

    def start(self, emit: Callable[[list[Sample]], None]) -> None:
        self.emit = emit


def test_event_drivers_emit_through_the_sampler(sampler: Sampler, sink: Sink) -> None:
    driver = FakeEventDriver()
    stats = sampler.add(driver, interval_s=1)
    sampler.start()
    wait_for(lambda: driver.emit is not None)
    assert driver.emit is not None
    driver.emit([Sample("door_open", 1)])
    driver.emit([Sample("door_open", 0)])
    assert [r.value for r in sink.readings] == [1.0, 0.0]
    assert stats.readings == 2


def test_stop_closes_every_driver(sink: Sink) -> None:
    sampler = Sampler("lab", "pi", sink)
    drivers = [FakeDriver("a"), FakeDriver("b", broken=True)]
    for driver in drivers:
        sampler.add(driver, interval_s=0.05)
    sampler.start()
    started = time.monotonic()
    sampler.stop()
    assert time.monotonic() - started < 1
    assert all(d.closed for d in drivers)


def test_on_open_is_told_about_each_driver_that_opens() -> None:
    from edge.config import SensorConfig
    from edge.drivers.simulated import SimulatedDriver
    from edge.sampler import Sampler

    opened: list[str] = []
    sampler = Sampler("lab", "pi", lambda readings: None, on_open=lambda d: opened.append(d.name))
    for name in ("one", "two"):
        sampler.add(SimulatedDriver.from_config(
            SensorConfig(driver="simulated", name=name, interval_s=10)), 10)
    sampler.start()
    deadline = time.monotonic() + 5
    while len(opened) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert sorted(opened) == ["one", "two"]


def test_a_flood_of_bad_samples_logs_a_few_lines_and_counts_them_all(
    caplog: pytest.LogCaptureFixture
) -> None:
    for limit in logging.getLogger("edge.sampler").filters:
        if isinstance(limit, RateLimit):
            limit.reset()  # earlier tests logged the same line
    stats = SensorStats()
    with caplog.at_level("WARNING", logger="edge.sampler"):
        for _ in range(900):
            to_readings("lab", "pi", FakeDriver("t"), [Sample("temperature", float("nan"))],
                        stats)
    assert stats.rejected == 900
    assert 1 <= len(caplog.records) <= 5
    assert "suppressed" in caplog.records[-1].getMessage()
