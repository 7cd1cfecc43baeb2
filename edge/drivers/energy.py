"""An energy counter that survives restarts, and a run state with hysteresis.

The counter integrates power over time (trapezoids between reads) and is saved to a small
JSON file, written atomically (temporary file, fsync, rename) so a power cut leaves either
the old or the new value, never a torn file. Gaps longer than ``max_gap_s`` (the agent was
stopped) are not integrated: nobody knows what the machine drew meanwhile.
"""

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EnergyMeter", "RunState"]

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """``running`` once power reaches ``on_w``, ``idle`` again only below ``off_w``."""

    on_w: float
    off_w: float
    running: bool = False

    def update(self, power_w: float) -> bool:
        if power_w >= self.on_w:
            self.running = True
        elif power_w <= self.off_w:
            self.running = False
        return self.running


class EnergyMeter:
    """Accumulates Wh from power samples; ``save`` persists the total."""

    def __init__(self, path: Path, max_gap_s: float) -> None:
        self.path = path
        self.max_gap_s = max_gap_s
        self.energy_wh = 0.0
        self.running: bool | None = None
        self._last: tuple[float, float] | None = None  # (monotonic s, power W)
        self.load()

    def load(self) -> None:
        """Read the saved total; a corrupt file is set aside and counting restarts at 0."""
        try:
            state = json.loads(self.path.read_text())
            energy = float(state["energy_wh"])
            if not (energy >= 0 and energy != float("inf")):
                raise ValueError(f"energy_wh {energy!r} is not a finite count")
            self.energy_wh = energy
            self.running = bool(state["running"]) if "running" in state else None
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.warning("energy state %s unreadable (%s): moved to %s, counting from 0",
                        self.path, exc, aside)
            with contextlib.suppress(OSError):
                self.path.replace(aside)

    def add(self, power_w: float, now_s: float) -> float:
        """Integrate up to ``now_s`` (monotonic seconds); returns the total in Wh."""
        if self._last is not None:
            last_s, last_w = self._last
            elapsed_s = now_s - last_s
            if 0 < elapsed_s <= self.max_gap_s:
                self.energy_wh += (last_w + power_w) / 2 * elapsed_s / 3600.0
        self._last = (now_s, power_w)
        return self.energy_wh

    def save(self) -> None:
        """Write the total atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = {"energy_wh": self.energy_wh, "running": self.running}
        with tmp.open("w") as handle:
            json.dump(body, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)
