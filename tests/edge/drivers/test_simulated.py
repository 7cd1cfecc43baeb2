"""The ``simulated`` driver reads its signals from absolute time, so restarts change nothing."""

import datetime as dt
import itertools

import pytest

from edge.config import SensorConfig
from edge.drivers.simulated import SimulatedDriver
from fabcity import simulation
from fabcity.errors import ConfigError

MONDAY_NOON_S = dt.datetime(2026, 11, 23, 11, tzinfo=dt.UTC).timestamp()


def _driver(name: str = "laser", **options: object) -> SimulatedDriver:
    return SimulatedDriver.from_config(SensorConfig.model_validate(
        {"driver": "simulated", "name": name, "profile": "machine", **options}))


def _energy(driver: SimulatedDriver, t: float) -> float:
    driver.clock = lambda: t
    return next(s.value for s in driver.read() if s.metric == "energy")


def test_energy_never_runs_backwards_across_a_restart() -> None:
    first = _driver(seed=1)
    readings = [_energy(first, MONDAY_NOON_S + k * 30) for k in range(60)]
    simulation._day_totals.clear()
    restarted = _driver(seed=1)
    after = [_energy(restarted, MONDAY_NOON_S + 1800 + k * 30) for k in range(60)]
    assert readings[-1] <= after[0]
    series = readings + after
    assert all(b >= a for a, b in itertools.pairwise(series))


def test_energy_differs_between_machines() -> None:
    values = {_energy(_driver(name, seed=seed, installed=installed), MONDAY_NOON_S)
              for name, seed, installed in (("laser", 1, "2024-03-11"),
                                            ("printer_1", 4, "2024-09-02"),
                                            ("printer_2", 5, "2025-05-19"))}
    assert len(values) == 3


def test_samples_carry_the_instant_they_describe() -> None:
    driver = _driver()
    driver.clock = lambda: MONDAY_NOON_S
    samples = driver.read()
    assert {s.metric for s in samples} == {"power", "energy", "state"}
    assert {s.ts_ms for s in samples} == {int(MONDAY_NOON_S * 1000)}


def test_episodes_raise_particulates_of_the_environment_profile() -> None:
    start = dt.datetime(2026, 11, 23, 1, tzinfo=dt.UTC)
    driver = SimulatedDriver.from_config(SensorConfig.model_validate(
        {"driver": "simulated", "name": "air", "episodes": [start.isoformat()],
         "episode_hours": 4}))
    driver.clock = lambda: start.timestamp() + 2 * 3600
    pm2_5 = next(s.value for s in driver.read() if s.metric == "pm2_5")
    assert pm2_5 > 35.5


def test_job_minutes_must_be_shortest_then_longest() -> None:
    with pytest.raises(ConfigError, match="job_minutes"):
        _driver(job_minutes=[60, 10])


def test_sequence_values_never_share_a_millisecond() -> None:
    """The hub keeps one reading per identity: two reads in one millisecond must differ."""
    driver = _driver("seq", profile="sequence")
    driver.clock = lambda: 1_795_730_700.0004  # a frozen clock: every read in the same ms
    samples = [driver.read()[0] for _ in range(3)]
    assert [s.value for s in samples] == [0, 1, 2]
    assert [s.ts_ms for s in samples] == [1_795_730_700_000, 1_795_730_700_001,
                                          1_795_730_700_002]
