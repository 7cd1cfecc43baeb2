"""The demo's simulation: believable machines and streets, as functions of absolute time."""

import datetime as dt
import itertools

from fabcity import simulation
from fabcity.simulation import (
    LOCAL_OFFSET_S,
    Machine,
    Place,
    energy_wh,
    environment,
    jobs,
    machine_power,
    machine_reading,
)

# Monday 2026-11-23 00:00 local time (UTC+1).
MONDAY_S = dt.datetime(2026, 11, 23, tzinfo=dt.UTC).timestamp() - LOCAL_OFFSET_S
HOUR_S = 3600
DAY_S = 86_400
LASER = Machine("laser:1", running_w=1400, idle_w=25,
                installed_s=dt.datetime(2024, 3, 11, tzinfo=dt.UTC).timestamp(),
                job_s=(300, 2700))


def _local_hour(t: float) -> float:
    return ((t + LOCAL_OFFSET_S) % DAY_S) / HOUR_S


def _week(step_s: int = 60) -> range:
    return range(int(MONDAY_S), int(MONDAY_S) + 7 * DAY_S, step_s)


def test_energy_counter_rises_monotonically_and_agrees_after_a_restart() -> None:
    before = [energy_wh(LASER, t) for t in _week(600)]
    simulation._day_totals.clear()  # a restarted agent: nothing remembered
    simulation.jobs.cache_clear()
    after = [energy_wh(LASER, t) for t in _week(600)]
    assert before == after
    assert all(b >= a for a, b in itertools.pairwise(after))
    assert after[-1] > after[0]


def test_energy_counter_asked_about_the_past_answers_the_same() -> None:
    late = energy_wh(LASER, MONDAY_S + 5 * DAY_S)
    early = energy_wh(LASER, MONDAY_S + DAY_S)
    assert early < late
    assert energy_wh(LASER, MONDAY_S + 5 * DAY_S) == late


def test_energy_counter_is_the_integral_of_power() -> None:
    day = range(int(MONDAY_S), int(MONDAY_S) + DAY_S, 10)
    integral_wh = sum(machine_power(LASER, t)[0] * 10 for t in day) / HOUR_S
    rise_wh = energy_wh(LASER, MONDAY_S + DAY_S) - energy_wh(LASER, MONDAY_S)
    assert abs(rise_wh - integral_wh) < 0.01 * rise_wh


def test_energy_counters_differ_per_machine() -> None:
    other = Machine("printer_1:4", running_w=180, idle_w=8,
                    installed_s=dt.datetime(2024, 9, 2, tzinfo=dt.UTC).timestamp())
    same_but_newer = Machine("laser:1", running_w=1400, idle_w=25,
                             installed_s=dt.datetime(2025, 5, 19, tzinfo=dt.UTC).timestamp())
    values = {energy_wh(m, MONDAY_S) for m in (LASER, other, same_but_newer)}
    assert len(values) == 3
    assert energy_wh(LASER, LASER.installed_s) == 0.0


def test_machines_run_in_opening_hours_and_idle_at_night_and_on_sunday() -> None:
    running_open = running_closed = minutes_open = 0
    for t in _week():
        power, running = machine_power(LASER, t)
        if LASER.hours.is_open(t):
            minutes_open += 1
            running_open += running
        else:
            running_closed += running
            assert power == LASER.idle_w
    assert running_closed == 0
    assert 0.3 < running_open / minutes_open < 0.9
    sunday = int(MONDAY_S) + 6 * DAY_S
    assert not any(machine_power(LASER, t)[1] for t in range(sunday, sunday + DAY_S, 60))
    night = int(MONDAY_S) + 2 * HOUR_S
    assert not any(machine_power(LASER, t)[1] for t in range(night, night + 5 * HOUR_S, 60))


def test_jobs_vary_in_length_and_saturday_is_shorter() -> None:
    lengths = {round(end - start) for day in range(7) for start, end, _ in
               jobs(LASER, int((MONDAY_S + LOCAL_OFFSET_S) // DAY_S) + day)}
    assert len(lengths) > 10
    assert min(lengths) < 900 < 1800 < max(lengths)
    saturday = [_local_hour(t) for t in _week() if _weekday_of(t) == 5
                and machine_power(LASER, t)[1]]
    assert saturday and min(saturday) >= 10 and max(saturday) < 14


def _weekday_of(t: float) -> int:
    return int((t - MONDAY_S) // DAY_S)


def test_state_agrees_with_power() -> None:
    for t in _week(120):
        reading = machine_reading(LASER, t)
        if reading["state"]:
            assert reading["power"] > 0.5 * LASER.running_w
        else:
            assert reading["power"] < 2 * LASER.idle_w


def test_a_pollution_episode_crosses_the_unhealthy_for_sensitive_groups_band() -> None:
    start = MONDAY_S + 2 * DAY_S + 7 * HOUR_S
    street = Place("pole:6", traffic=1.0, episodes=((start, start + 4 * HOUR_S),))
    above = [t for t in _week() if environment(street, t)["pm2_5"] >= 35.5]
    assert len(above) >= 2 * 60  # minutes: at least two hours above 35.5 ug/m3
    assert all(start <= t < start + 4 * HOUR_S for t in above)
    # At worst a few points into the next band (55.5): an episode, not an emergency.
    assert max(environment(street, t)["pm2_5"] for t in _week()) < 60


def test_streets_follow_rush_hours_and_temperature_a_daily_cycle() -> None:
    street = Place("pole:6")
    tuesday = MONDAY_S + DAY_S

    def mean(metric: str, hour: float) -> float:
        times = [tuesday + hour * HOUR_S + k * 60 for k in range(30)]
        return sum(environment(street, t)[metric] for t in times) / len(times)

    assert mean("pm2_5", 8.25) > mean("pm2_5", 3) + 8
    assert mean("noise", 18.25) > mean("noise", 3) + 10
    assert mean("pm2_5", 8.25) > mean("pm2_5", 8.25 + 5 * 24)  # Sunday morning is calm
    assert mean("temperature", 15) > mean("temperature", 5) + 5
    assert mean("humidity", 15) < mean("humidity", 5)


def test_signals_depend_only_on_the_instant_and_the_key() -> None:
    t = MONDAY_S + 9.5 * HOUR_S
    assert environment(Place("a"), t) == environment(Place("a"), t)
    assert environment(Place("a"), t) != environment(Place("b"), t)
