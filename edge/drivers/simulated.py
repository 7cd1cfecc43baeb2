"""A simulated sensor: plausible signals without hardware, for demos and tests.

Profiles: ``environment`` (temperature, humidity, pm2_5, pm10, co2, noise following a daily
traffic curve, with optional pollution episodes), ``machine`` (a fablab machine running jobs
in opening hours and idling otherwise: power, an energy counter, run state) and ``sequence``
(0, 1, 2, … to prove nothing is lost; every value gets its own millisecond, since the hub
stores one reading per identity and a late wake-up can bring two reads within one).

The first two are functions of absolute time (:mod:`fabcity.simulation`): a restarted agent
carries on where the last one stopped (the energy counter never runs backwards), and the
demo's pre-filled history matches what the agents publish live.
"""

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from edge.config import SensorConfig
from edge.drivers.base import PolledDriver, Sample
from fabcity.simulation import Machine, Place, environment, machine_reading

__all__ = ["SimulatedDriver", "SimulatedOptions"]

_ENVIRONMENT = {
    "temperature": "degC", "humidity": "%", "pm2_5": "ug/m3", "pm10": "ug/m3",
    "co2": "ppm", "noise": "dBA",
}
_MACHINE = {"power": "W", "energy": "Wh", "state": "bool"}
_SEQUENCE = {"sequence": "1"}
PROFILE_METRICS = {"environment": _ENVIRONMENT, "machine": _MACHINE, "sequence": _SEQUENCE}


class SimulatedOptions(BaseModel):
    """Options of the ``simulated`` driver."""

    model_config = ConfigDict(extra="forbid")

    profile: Literal["environment", "machine", "sequence"] = "environment"
    seed: int | None = Field(None, description="varies the signal between sensors of one name")
    running_power_w: float = Field(1200.0, gt=0, description="machine profile: power when running")
    idle_power_w: float = Field(15.0, ge=0, description="machine profile: power when idle")
    installed: date = Field(date(2025, 1, 1),
                            description="machine profile: the day its energy counter was 0")
    job_minutes: tuple[float, float] = Field(
        (10.0, 60.0), description="machine profile: shortest and longest job")
    traffic: float = Field(1.0, ge=0, le=2,
                           description="environment profile: traffic passing (1: busy street)")
    episodes: list[AwareDatetime] = Field(
        [], description="environment profile: starts of pollution episodes")
    episode_hours: float = Field(4.0, gt=0, le=72,
                                 description="environment profile: length of an episode")

    @model_validator(mode="after")
    def _job_range(self) -> "SimulatedOptions":
        low, high = self.job_minutes
        if not 0 < low <= high:
            raise ValueError("job_minutes must be [shortest, longest] with 0 < shortest <= "
                             "longest")
        return self

    def key(self, sensor: str) -> str:
        """What makes this sensor's signal its own."""
        return sensor if self.seed is None else f"{sensor}:{self.seed}"

    def machine(self, sensor: str) -> Machine:
        """The simulated machine behind a ``machine`` profile sensor."""
        installed = datetime(self.installed.year, self.installed.month, self.installed.day,
                             tzinfo=UTC).timestamp()
        low, high = self.job_minutes
        return Machine(self.key(sensor), self.running_power_w, self.idle_power_w, installed,
                       job_s=(low * 60, high * 60))

    def place(self, sensor: str) -> Place:
        """The simulated place behind an ``environment`` profile sensor."""
        length_s = self.episode_hours * 3600
        return Place(self.key(sensor), self.traffic,
                     tuple((e.timestamp(), e.timestamp() + length_s) for e in self.episodes))


class SimulatedDriver(PolledDriver[SimulatedOptions]):
    """Plausible environment or machine signals, or a gap-free sequence."""

    Options = SimulatedOptions
    summary = "simulated signals (profile: environment, machine or sequence)"
    METRICS = {**_ENVIRONMENT, **_MACHINE, **_SEQUENCE}

    def __init__(self, config: SensorConfig, options: SimulatedOptions) -> None:
        super().__init__(config, options)
        self._count = 0
        self._last_ms = 0
        #: Wall-clock seconds; tests replace it to read at chosen instants.
        self.clock: Callable[[], float] = time.time
        self._machine = options.machine(config.name)
        self._place = options.place(config.name)

    def metrics(self) -> dict[str, str]:
        return PROFILE_METRICS[self.options.profile].copy()

    def read(self) -> list[Sample]:
        if self.options.profile == "sequence":
            value = self._count
            self._count += 1
            self._last_ms = max(int(self.clock() * 1000), self._last_ms + 1)
            return [Sample("sequence", value, self._last_ms)]
        now = self.clock()
        values = (machine_reading(self._machine, now) if self.options.profile == "machine"
                  else environment(self._place, now))
        ts_ms = int(now * 1000)
        return [Sample(metric, value, ts_ms) for metric, value in values.items()]
