"""Map a device's uptime (32-bit milliseconds, wrapping after ~49.7 days) to UTC.

Every frame carries the uptime at which the device wrote it; the host notes when it arrived.
``received - uptime`` overestimates the clock offset by the transmission delay, so the
smallest value over the last few frames is the best estimate. A short window follows the
drift of a microcontroller's crystal or resonator (up to ~0.5 %).
"""

from collections import deque

__all__ = ["CLOCK_WINDOW_FRAMES", "UPTIME_MODULUS", "DeviceClock"]

UPTIME_MODULUS = 1 << 32
CLOCK_WINDOW_FRAMES = 32


class DeviceClock:
    """Unwraps the device uptime and converts it to UTC milliseconds."""

    def __init__(self, window_frames: int = CLOCK_WINDOW_FRAMES) -> None:
        self._offsets: deque[int] = deque(maxlen=window_frames)
        self._last: int | None = None
        self._wraps = 0

    def reset(self) -> None:
        """Forget everything: the device restarted."""
        self._offsets.clear()
        self._last = None
        self._wraps = 0

    def is_backwards(self, uptime_ms: int) -> bool:
        """True if ``uptime_ms`` lies before the last one seen: the device restarted."""
        if self._last is None:
            return False
        return (uptime_ms - self._last) % UPTIME_MODULUS >= UPTIME_MODULUS // 2

    def observe(self, uptime_ms: int, received_ms: int) -> int:
        """Record a frame written at ``uptime_ms`` and received at ``received_ms`` (UTC);
        return its UTC timestamp in ms (never later than its arrival)."""
        if self._last is not None and uptime_ms < self._last:
            self._wraps += 1  # forward across the 32-bit wrap (is_backwards() was False)
        self._last = uptime_ms
        unwrapped = self._wraps * UPTIME_MODULUS + uptime_ms
        self._offsets.append(received_ms - unwrapped)
        return unwrapped + min(self._offsets)
