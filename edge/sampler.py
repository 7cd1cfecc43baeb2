"""The sampler: one thread per sensor turns driver samples into buffered readings.

A polled driver is read every ``interval_s`` on a drift-free schedule; an event driver calls
``emit`` itself. A failing sensor is logged (once per distinct error), counted and retried
with the next interval; it never stops the other sensors.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.drivers.base import EventDriver, PolledDriver, Sample, SensorDriver
from fabcity.errors import BadReading
from fabcity.logs import rate_limited
from fabcity.reading import Reading, now_ms

__all__ = ["Sampler", "SensorStats", "Transform", "to_readings"]

log = rate_limited(logging.getLogger(__name__))  # per-message lines must not flood

#: A per-sensor step between driver and buffer (calibration, range checks, flags).
Transform = Callable[[list[Reading]], list[Reading]]
OPEN_RETRY_MAX_S = 60.0


@dataclass
class SensorStats:
    """What happened to one sensor since start."""

    readings: int = 0
    errors: int = 0
    rejected: int = 0
    last_error: str | None = None
    last_reading_ms: int | None = None


@dataclass
class _Sensor:
    driver: SensorDriver
    interval_s: float
    transform: Transform | None = None
    stats: SensorStats = field(default_factory=SensorStats)
    opened: bool = False


def to_readings(site: str, device: str, driver: SensorDriver, samples: list[Sample],
                stats: SensorStats | None = None) -> list[Reading]:
    """Turn a driver's samples into readings; bad samples are logged, counted and skipped."""
    units = driver.metrics()
    now = now_ms()
    readings = []
    for sample in samples:
        try:
            readings.append(Reading(site, device, driver.name, sample.metric, sample.value,
                                    sample.ts_ms if sample.ts_ms is not None else now,
                                    units.get(sample.metric), sample.flags))
        except BadReading as exc:
            if stats is not None:
                stats.rejected += 1
            log.warning("sensor %r: dropped sample %s=%r: %s", driver.name, sample.metric,
                        sample.value, exc)
    return readings


class Sampler:
    """Runs every sensor and hands its readings to ``sink`` (the buffer)."""

    def __init__(self, site: str, device: str, sink: Callable[[list[Reading]], None],
                 on_open: Callable[[SensorDriver], None] | None = None) -> None:
        self.site = site
        self.device = device
        self.sink = sink
        self.on_open = on_open  # told when a driver opens (it may now know its metrics)
        self._sensors: list[_Sensor] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def add(self, driver: SensorDriver, interval_s: float,
            transform: Transform | None = None) -> SensorStats:
        """Register a sensor before :meth:`start`; returns its live statistics."""
        sensor = _Sensor(driver, interval_s, transform)
        self._sensors.append(sensor)
        return sensor.stats

    @property
    def stats(self) -> dict[str, SensorStats]:
        """Statistics per sensor name."""
        return {s.driver.name: s.stats for s in self._sensors}

    def start(self) -> None:
        """Start one thread per sensor."""
        for sensor in self._sensors:
            thread = threading.Thread(target=self._run, args=(sensor,), daemon=True,
                                      name=f"sensor-{sensor.driver.name}")
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every sensor thread and close the drivers."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        for sensor in self._sensors:
            try:
                sensor.driver.close()
            except Exception:
                log.exception("sensor %r: error while closing", sensor.driver.name)

    def _emit(self, sensor: _Sensor, samples: list[Sample]) -> None:
        readings = to_readings(self.site, self.device, sensor.driver, samples, sensor.stats)
        if sensor.transform is not None:
            readings = sensor.transform(readings)
        if readings:
            self.sink(readings)
            sensor.stats.readings += len(readings)
            sensor.stats.last_reading_ms = readings[-1].ts_ms

    def _fail(self, sensor: _Sensor, exc: BaseException) -> None:
        sensor.stats.errors += 1
        message = f"{type(exc).__name__}: {exc}"
        if message != sensor.stats.last_error:  # log each distinct error once in a row
            log.error("sensor %r (%s): %s", sensor.driver.name,
                      type(sensor.driver).__name__, message)
        sensor.stats.last_error = message

    def _open(self, sensor: _Sensor) -> None:
        delay_s = min(sensor.interval_s, 1.0)
        while not self._stop.is_set():
            try:
                sensor.driver.open()
                sensor.opened = True
                if self.on_open is not None:
                    self.on_open(sensor.driver)
                if isinstance(sensor.driver, EventDriver):
                    sensor.driver.start(lambda samples: self._emit(sensor, samples))
                return
            except Exception as exc:
                self._fail(sensor, exc)
                self._stop.wait(delay_s)
                delay_s = min(delay_s * 2, OPEN_RETRY_MAX_S)

    def _run(self, sensor: _Sensor) -> None:
        self._open(sensor)
        if not isinstance(sensor.driver, PolledDriver):
            return
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                samples = sensor.driver.read()
                if sensor.stats.last_error is not None:
                    log.info("sensor %r: reading again", sensor.driver.name)
                    sensor.stats.last_error = None
                self._emit(sensor, samples)
            except Exception as exc:
                self._fail(sensor, exc)
            next_t += sensor.interval_s
            now = time.monotonic()
            if next_t < now:  # fell behind (slow sensor): skip, do not burst
                next_t = now + sensor.interval_s
            self._stop.wait(next_t - now)
