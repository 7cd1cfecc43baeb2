"""Data quality at the edge: calibration, plausible ranges, and humidity-suspect particulates.

Per sensor (``[[sensors]]`` keys)::

    calibration.pm2_5 = { scale = 0.8, offset = 1.5 }          # true = raw * scale + offset
    calibration.temperature = { points = [[0.3, 0.0], [99.1, 100.0]] }  # two (raw, true) pairs
    plausible.pm2_5 = [0, 500]       # overrides the catalogue's range for this sensor
    out_of_range = "flag"            # or "reject"

Per device (``[quality]``): particulate readings taken while the latest relative humidity
on the same device is above ``humidity_limit_pct`` (70 %) are flagged ``suspect_humidity``:
low-cost optical counters read water droplets as particles.
"""

import logging
import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from edge.config import QualityConfig, SensorConfig
from fabcity.catalogue import lookup
from fabcity.config import format_validation_error
from fabcity.errors import ConfigError
from fabcity.logs import rate_limited
from fabcity.reading import Reading

__all__ = [
    "FLAG_OUT_OF_RANGE",
    "FLAG_SUSPECT_HUMIDITY",
    "Calibration",
    "DeviceQuality",
    "SensorQuality",
    "is_particulate",
]

log = rate_limited(logging.getLogger(__name__))  # per-message lines must not flood

FLAG_OUT_OF_RANGE = "out_of_range"
FLAG_SUSPECT_HUMIDITY = "suspect_humidity"
_PARTICULATE_PREFIXES = ("pm", "particles_")


def is_particulate(metric: str) -> bool:
    """Metrics an optical particle counter reports (pm1, pm2_5, pm10, particles_*)."""
    return metric.startswith(_PARTICULATE_PREFIXES)


class Calibration(BaseModel):
    """``true = raw * scale + offset``, or the line through two (raw, true) points."""

    model_config = ConfigDict(extra="forbid")

    scale: float = 1.0
    offset: float = 0.0
    points: tuple[tuple[float, float], tuple[float, float]] | None = None

    @model_validator(mode="after")
    def _two_point(self) -> "Calibration":
        if self.points is None:
            return self
        if {"scale", "offset"} & self.model_fields_set:
            raise ValueError("give either points or scale/offset, not both")
        (raw_a, true_a), (raw_b, true_b) = self.points
        if raw_a == raw_b:
            raise ValueError("the two points need different raw values")
        self.scale = (true_b - true_a) / (raw_b - raw_a)
        self.offset = true_a - self.scale * raw_a
        return self

    def apply(self, raw: float) -> float:
        return raw * self.scale + self.offset


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calibration: dict[str, Calibration] = {}
    plausible: dict[str, tuple[float, float]] = {}
    out_of_range: Literal["flag", "reject"] = "flag"

    @model_validator(mode="after")
    def _ordered(self) -> "_Rules":
        for metric, (low, high) in self.plausible.items():
            if low >= high:
                raise ValueError(f"plausible.{metric}: low {low:g} must be below high {high:g}")
        return self


class DeviceQuality:
    """Device-wide state shared by every sensor: the latest relative humidity."""

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig.model_validate({})
        self._lock = threading.Lock()
        self._humidity: tuple[float, int] | None = None  # (percent, ts_ms)

    def note_humidity(self, percent: float, ts_ms: int) -> None:
        with self._lock:
            if self._humidity is None or ts_ms >= self._humidity[1]:
                self._humidity = (percent, ts_ms)

    def humid_at(self, ts_ms: int) -> bool:
        """Was a recent humidity reading above the limit at ``ts_ms``?"""
        with self._lock:
            latest = self._humidity
        if latest is None:
            return False
        percent, seen_ms = latest
        fresh = abs(ts_ms - seen_ms) <= self.config.humidity_max_age_s * 1000
        return fresh and percent > self.config.humidity_limit_pct


class SensorQuality:
    """The per-sensor transform the sampler applies between driver and buffer."""

    def __init__(self, sensor: SensorConfig, device: DeviceQuality) -> None:
        raw = {"calibration": sensor.calibration, "plausible": sensor.plausible,
               "out_of_range": sensor.out_of_range}
        try:
            self.rules = _Rules.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(f"sensor {sensor.name!r} ({sensor.driver})", exc)
            ) from None
        self.name = sensor.name
        self.device = device
        self.rejected = 0
        self.flagged = 0

    def limits(self, metric: str) -> tuple[float | None, float | None]:
        """The plausible range of ``metric`` on this sensor (configured, else catalogued)."""
        if metric in self.rules.plausible:
            return self.rules.plausible[metric]
        known = lookup(metric)
        return (known.low, known.high) if known is not None else (None, None)

    def __call__(self, readings: list[Reading]) -> list[Reading]:
        checked: list[tuple[Reading, float, bool]] = []
        for reading in readings:
            calibration = self.rules.calibration.get(reading.metric)
            value = calibration.apply(reading.value) if calibration else reading.value
            low, high = self.limits(reading.metric)
            outside = (low is not None and value < low) or (high is not None and value > high)
            if outside and self.rules.out_of_range == "reject":
                self.rejected += 1
                log.warning("sensor %r: rejected %s=%g outside [%s, %s]", self.name,
                            reading.metric, value, low, high)
                continue
            if reading.metric == "humidity" and not outside:
                self.device.note_humidity(value, reading.ts_ms)
            checked.append((reading, value, outside))
        out = []
        for reading, value, outside in checked:  # humidity first: it may flag this batch
            flags = list(reading.flags)
            if outside:
                flags.append(FLAG_OUT_OF_RANGE)
            if is_particulate(reading.metric) and self.device.humid_at(reading.ts_ms):
                flags.append(FLAG_SUSPECT_HUMIDITY)
            if len(flags) != len(reading.flags):
                self.flagged += 1
            if value != reading.value or flags:
                reading = reading.replace(value=value, flags=tuple(flags))
            out.append(reading)
        return out
