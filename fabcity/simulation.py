"""Simulated signals as pure functions of absolute time, for the demo and its tests.

Every value depends only on the instant and on who is measuring (a machine's or a place's
``key``), never on when a process started: the ``simulated`` driver of a live edge agent and
the demo's pre-filled history therefore agree, and a restarted agent carries on where the
last one stopped. Noise comes from hashing (key, instant), not from a generator's state.

* A :class:`Machine` runs jobs of varying length during a fablab's opening hours (longer on
  weekdays than on Saturday, none on Sunday) and idles otherwise; its energy counter is the
  integral of its modelled power since its installation day, so it never runs backwards.
* A :class:`Place` follows a daily traffic curve (two rush hours on weekdays, a flatter
  weekend), a daily temperature and humidity cycle, and pollution episodes given as
  ``(start_s, end_s)`` spans during which PM2.5 climbs above 35.5 ug/m3 (the US EPA band
  "unhealthy for sensitive groups").
"""

import hashlib
import math
import random
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "FABLAB_HOURS",
    "LOCAL_OFFSET_S",
    "Machine",
    "OpeningHours",
    "Place",
    "energy_wh",
    "environment",
    "jobs",
    "machine_power",
    "machine_reading",
    "traffic",
]

DAY_S = 86_400
HOUR_S = 3_600
#: The demo's sites keep Central European Time (summer time is left out for simplicity).
LOCAL_OFFSET_S = HOUR_S
EPISODE_RAMP_S = HOUR_S  # pollution builds up and clears over this long
EPISODE_PM2_5 = 32.0  # ug/m3 added at the height of an episode


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser: a well-spread 64-bit number from any integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@lru_cache(maxsize=1024)
def _key_number(key: str) -> int:
    """A stable number for a key (``hash()`` of a string changes between processes)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def _uniform(key: str, n: int) -> float:
    """A uniform number in [0, 1) fixed by ``(key, n)``."""
    return (_mix(_key_number(key) ^ _mix(n)) >> 11) / 9007199254740992.0  # 2**53


def _gauss(key: str, n: int) -> float:
    """A standard normal number fixed by ``(key, n)`` (Box-Muller)."""
    u = 1.0 - _uniform(key, 2 * n)
    return math.sqrt(-2.0 * math.log(u)) * math.cos(2 * math.pi * _uniform(key, 2 * n + 1))


def _local_day(t_s: float) -> int:
    return int((t_s + LOCAL_OFFSET_S) // DAY_S)


def _local_hour(t_s: float) -> float:
    return ((t_s + LOCAL_OFFSET_S) % DAY_S) / HOUR_S


def _weekday(day: int) -> int:
    """Monday 0 … Sunday 6 of a local day number (day 0, 1970-01-01, was a Thursday)."""
    return (day + 3) % 7


def _day_start_s(day: int) -> float:
    return day * DAY_S - LOCAL_OFFSET_S


@dataclass(frozen=True)
class OpeningHours:
    """Local opening hours ``(open, close)`` in hours; ``None`` means closed all day."""

    weekday: tuple[float, float] | None = (9.0, 20.0)
    saturday: tuple[float, float] | None = (10.0, 14.0)
    sunday: tuple[float, float] | None = None

    def of(self, day: int) -> tuple[float, float] | None:
        """The opening span of a local day, as epoch seconds."""
        weekday = _weekday(day)
        hours = self.weekday if weekday < 5 else self.saturday if weekday == 5 else self.sunday
        if hours is None:
            return None
        start = _day_start_s(day)
        return start + hours[0] * HOUR_S, start + hours[1] * HOUR_S

    def is_open(self, t_s: float) -> bool:
        span = self.of(_local_day(t_s))
        return span is not None and span[0] <= t_s < span[1]


FABLAB_HOURS = OpeningHours()


@dataclass(frozen=True)
class Machine:
    """A fablab machine: idle power, running power, job lengths and its installation day."""

    key: str
    running_w: float
    idle_w: float
    installed_s: float  # the counter is 0 at this instant (start of a local day)
    job_s: tuple[float, float] = (600.0, 3600.0)  # shortest and longest job
    gap_s: tuple[float, float] = (300.0, 2700.0)  # idle time between jobs
    hours: OpeningHours = FABLAB_HOURS


@lru_cache(maxsize=4096)
def jobs(machine: Machine, day: int) -> tuple[tuple[float, float, float], ...]:
    """The jobs of one local day: ``(start_s, end_s, load)``, inside opening hours.

    ``load`` (0.6-1.0) is the share of running power a job draws (engraving vs cutting).
    """
    span = machine.hours.of(day)
    if span is None or _day_start_s(day + 1) <= machine.installed_s:
        return ()
    rng = random.Random(f"{machine.key}:{day}")  # noqa: S311 - a simulation, not a secret
    opens, closes = span
    if rng.random() < 0.1:  # nobody booked this machine today
        return ()
    out: list[tuple[float, float, float]] = []
    t = opens + rng.uniform(0, machine.gap_s[1])
    while t + machine.job_s[0] <= closes:
        end = min(t + rng.uniform(*machine.job_s), closes)
        out.append((t, end, rng.uniform(0.6, 1.0)))
        t = end + rng.uniform(*machine.gap_s)
    return tuple(out)


def machine_power(machine: Machine, t_s: float) -> tuple[float, bool]:
    """Modelled power (W, without noise) and whether a job runs at ``t_s``."""
    if t_s < machine.installed_s:
        return 0.0, False
    for start, end, load in jobs(machine, _local_day(t_s)):
        if start <= t_s < end:
            return machine.running_w * load, True
    return machine.idle_w, False


def _energy_between(machine: Machine, day: int, until_s: float) -> float:
    """Wh drawn during local ``day`` from its start (or the installation) to ``until_s``."""
    start = max(_day_start_s(day), machine.installed_s)
    if until_s <= start:
        return 0.0
    joules = machine.idle_w * (until_s - start)
    for job_start, job_end, load in jobs(machine, day):
        overlap = min(job_end, until_s) - max(job_start, start)
        if overlap > 0:
            joules += (machine.running_w * load - machine.idle_w) * overlap
    return joules / HOUR_S


_day_totals: dict[Machine, tuple[int, float]] = {}  # machine -> (day, Wh before that day)


def energy_wh(machine: Machine, t_s: float) -> float:
    """The machine's counter at ``t_s``: its modelled power integrated since installation."""
    if t_s <= machine.installed_s:
        return 0.0
    day = _local_day(t_s)
    first = _local_day(machine.installed_s)
    cached_day, total = _day_totals.get(machine, (first, 0.0))
    if cached_day > day:  # asked about the past: count again from the installation
        cached_day, total = first, 0.0
    for d in range(cached_day, day):
        total += _energy_between(machine, d, _day_start_s(d + 1))
    _day_totals[machine] = (day, total)
    return total + _energy_between(machine, day, t_s)


def machine_reading(machine: Machine, t_s: float) -> dict[str, float]:
    """``power`` (W, with 2 % noise), ``energy`` (Wh) and ``state`` (1 running, 0 idle)."""
    power, running = machine_power(machine, t_s)
    noisy = max(0.0, power * (1 + 0.02 * _gauss(machine.key, int(t_s * 1000))))
    return {"power": round(noisy, 1), "energy": round(energy_wh(machine, t_s), 3),
            "state": 1.0 if running else 0.0}


@dataclass(frozen=True)
class Place:
    """Where air is measured: how much traffic passes and when pollution episodes happen."""

    key: str
    traffic: float = 1.0  # 1: a busy street; 0.3: indoors or a quiet square
    episodes: tuple[tuple[float, float], ...] = ()  # (start_s, end_s)


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2) / 2)


def traffic(t_s: float) -> float:
    """Traffic intensity 0-1: rush hours around 08:30 and 18:30 on weekdays, a midday
    swell at weekends, little at night."""
    hour = _local_hour(t_s)
    if _weekday(_local_day(t_s)) < 5:
        daytime = 0.35 * _bump(hour, 13.5, 4.0)
        return min(1.0, 0.05 + daytime + 0.9 * _bump(hour, 8.5, 1.0)
                   + 0.75 * _bump(hour, 18.5, 1.3))
    return 0.05 + 0.45 * _bump(hour, 13.0, 3.5)


def _episode(place: Place, t_s: float) -> float:
    """0 outside episodes, 1 at their height; builds up and clears over an hour."""
    level = 0.0
    for start, end in place.episodes:
        if start <= t_s < end:
            ramp = min(t_s - start, end - t_s) / EPISODE_RAMP_S
            level = max(level, min(1.0, ramp))
    return level


def environment(place: Place, t_s: float) -> dict[str, float]:
    """Temperature, humidity, particulates, CO2 and noise at ``t_s``."""
    n = int(t_s * 1000)
    key = place.key
    day = math.sin(2 * math.pi * (_local_hour(t_s) / 24 - 0.375))  # warmest mid-afternoon
    load = traffic(t_s) * place.traffic
    episode = _episode(place, t_s)
    pm2_5 = max(0.5, 5 + 14 * load + EPISODE_PM2_5 * episode + 1.2 * _gauss(key + "pm", n))
    return {
        "temperature": round(13 + 4 * day + 0.2 * _gauss(key + "t", n), 2),
        "humidity": round(min(100.0, max(5.0, 55 - 12 * day + _gauss(key + "h", n))), 1),
        "pm2_5": round(pm2_5, 1),
        "pm10": round(pm2_5 * 1.5 + abs(2 * _gauss(key + "pm10", n)), 1),
        "co2": round(420 + 80 * load + 40 * episode + 8 * _gauss(key + "co2", n)),
        "noise": round(42 + 24 * load + 3 * _gauss(key + "db", n), 1),
    }
