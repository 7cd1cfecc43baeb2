"""A simulated sensor: plausible signals without hardware, for demos and tests.

Profiles: ``environment`` (temperature, humidity, pm2_5, pm10, co2, noise with a daily
cycle and noise), ``machine`` (a machine switching between idle and running: power, a
monotonic energy counter, run state) and ``sequence`` (0, 1, 2, … to prove nothing is lost).
"""

import math
import random
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.config import SensorConfig
from edge.drivers.base import PolledDriver, Sample

__all__ = ["SimulatedDriver"]

_DAY_S = 86_400.0
_INSTALLED_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
_ENVIRONMENT = {
    "temperature": "degC", "humidity": "%", "pm2_5": "ug/m3", "pm10": "ug/m3",
    "co2": "ppm", "noise": "dBA",
}
_MACHINE = {"power": "W", "energy": "Wh", "state": "bool"}
_SEQUENCE = {"sequence": "1"}


class SimulatedOptions(BaseModel):
    """Options of the ``simulated`` driver."""

    model_config = ConfigDict(extra="forbid")

    profile: Literal["environment", "machine", "sequence"] = "environment"
    seed: int | None = None
    running_power_w: float = Field(1200.0, gt=0, description="machine profile: power when running")
    idle_power_w: float = Field(15.0, ge=0, description="machine profile: power when idle")


class SimulatedDriver(PolledDriver):
    """Plausible environment or machine signals, or a gap-free sequence."""

    Options = SimulatedOptions
    summary = "simulated signals (profile: environment, machine or sequence)"
    METRICS = {**_ENVIRONMENT, **_MACHINE, **_SEQUENCE}

    def __init__(self, config: SensorConfig, options: SimulatedOptions) -> None:  # type: ignore[override]
        super().__init__(config, options)
        self.opts = options
        self._rng = random.Random(options.seed)
        self._count = 0
        self._running = False
        self._last_t = time.time()
        # An energy counter that keeps rising across restarts: start from a figure that
        # grows with wall-clock time at the idle rate since the simulated installation.
        self._energy_wh = max(0.0, self._last_t - _INSTALLED_S) / 3600.0 * options.idle_power_w

    def metrics(self) -> dict[str, str]:
        return {
            "environment": _ENVIRONMENT,
            "machine": _MACHINE,
            "sequence": _SEQUENCE,
        }[self.opts.profile].copy()

    def read(self) -> list[Sample]:
        if self.opts.profile == "sequence":
            value = self._count
            self._count += 1
            return [Sample("sequence", value)]
        if self.opts.profile == "machine":
            return self._machine()
        return self._environment()

    def _environment(self) -> list[Sample]:
        now = time.time()
        day = math.sin(2 * math.pi * ((now % _DAY_S) / _DAY_S - 0.375))  # peak mid-afternoon
        rush = max(0.0, math.sin(2 * math.pi * ((now % _DAY_S) / _DAY_S - 0.25) * 2))
        g = self._rng.gauss
        pm2_5 = max(0.5, 9 + 8 * rush + g(0, 1.5))
        return [
            Sample("temperature", round(16 + 6 * day + g(0, 0.2), 2)),
            Sample("humidity", round(min(100, max(5, 60 - 15 * day + g(0, 1.0))), 1)),
            Sample("pm2_5", round(pm2_5, 1)),
            Sample("pm10", round(pm2_5 * 1.6 + abs(g(0, 2)), 1)),
            Sample("co2", round(420 + 60 * rush + g(0, 8))),
            Sample("noise", round(48 + 14 * rush + g(0, 3), 1)),
        ]

    def _machine(self) -> list[Sample]:
        now = time.time()
        if self._rng.random() < 0.05:  # jobs start and stop now and then
            self._running = not self._running
        base = self.opts.running_power_w if self._running else self.opts.idle_power_w
        power = max(0.0, base * (1 + self._rng.gauss(0, 0.03)))
        self._energy_wh += power * max(0.0, now - self._last_t) / 3600.0
        self._last_t = now
        return [
            Sample("power", round(power, 1)),
            Sample("energy", round(self._energy_wh, 3)),
            Sample("state", 1.0 if self._running else 0.0),
        ]
