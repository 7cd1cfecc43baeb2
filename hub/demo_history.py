"""The demo's history: days of readings written straight into the hub's storage on start.

Charts and downloads are then never empty. The readings come from the same functions the
simulated edge agents publish from (:mod:`fabcity.simulation`), built from the agents' own
sensor configuration, one reading per minute and metric. Timestamps are whole minutes, so a
restarted demo writes nothing twice (storage is idempotent on the reading identity); each
series is also filled only after its newest stored reading, so earlier live readings are
neither rewritten nor padded with a second, minute-aligned copy.

Like the rest of the demo this module reads edge configuration models: it is imported only
by ``fabcity demo``, never by the hub itself.
"""

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from edge.config import SensorConfig
from edge.drivers.simulated import PROFILE_METRICS, SimulatedOptions
from fabcity.reading import Reading
from fabcity.simulation import environment, machine_reading
from hub.storage.base import Storage
from hub.storage.rollup import RollupState

__all__ = ["HISTORY_DAYS", "STEP_S", "prefill"]

HISTORY_DAYS = 7
STEP_S = 60
BATCH_READINGS = 20_000
DAY_S = 86_400

Signal = Callable[[float], dict[str, float]]


class _Series:
    """One simulated sensor: where its readings go and how to compute them."""

    def __init__(self, site: str, device: str, sensor: SensorConfig) -> None:
        options = SimulatedOptions.model_validate(sensor.options)
        self.site, self.device, self.sensor = site, device, sensor.name
        self.units = PROFILE_METRICS[options.profile]
        if options.profile == "machine":
            machine = options.machine(sensor.name)
            self.signal: Signal | None = lambda t: machine_reading(machine, t)
        elif options.profile == "environment":
            place = options.place(sensor.name)
            self.signal = lambda t: environment(place, t)
        else:
            self.signal = None  # a sequence has no history
        self.after_s = -1.0  # fill only after this instant (the newest stored reading)

    def readings(self, t: int) -> list[Reading]:
        if self.signal is None or t <= self.after_s:
            return []
        return [Reading(self.site, self.device, self.sensor, metric, value, t * 1000,
                        self.units[metric])
                for metric, value in self.signal(float(t)).items()]


def prefill(
    storage: Storage,
    agents: Sequence[tuple[str, str, Sequence[SensorConfig]]],
    now_s: float,
    rollups: RollupState | None = None,
    days: int = HISTORY_DAYS,
    out: TextIO | None = sys.stdout,
) -> int:
    """Write ``days`` of simulated readings up to ``now_s`` for every ``(site, device,
    sensors)`` of ``agents``; returns how many were new.

    With ``rollups`` given, the minutes written are marked for the rollup worker first (a
    restarted hub has already rolled up that far back: these are late readings to it).
    """
    end = int(now_s) // STEP_S * STEP_S
    start = end - days * DAY_S
    series = [_Series(site, device, sensor)
              for site, device, sensors in agents for sensor in sensors]
    for s in series:  # newest stored reading per sensor: fill only after it
        for r in storage.latest(site=s.site, device=s.device):
            if r.sensor == s.sensor:
                s.after_s = max(s.after_s, r.ts_ms / 1000)
    t0 = time.perf_counter()
    new = 0
    batch: list[Reading] = []

    def flush() -> int:
        if rollups is not None:
            rollups.mark_late(batch)
        stored = storage.write(batch) or 0
        batch.clear()
        return stored

    shown = -1
    for t in range(start, end, STEP_S):
        for s in series:
            batch += s.readings(t)
        if len(batch) >= BATCH_READINGS:
            new += flush()
        percent = (t - start) * 100 // (end - start)
        if out is not None and percent // 10 != shown:
            shown = percent // 10
            out.write(f"\r  history: {percent:3d} % ({new:,} readings written)")
            out.flush()
    if batch:
        new += flush()
    if out is not None:
        out.write(f"\r  history: {days} days before now ready, {new:,} new readings "
                  f"in {time.perf_counter() - t0:.1f} s\n")
        out.flush()
    return new
