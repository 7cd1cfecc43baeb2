"""Sequence numbers: count the frames lost between two that arrived."""

from firmware_bridge.frame import SEQ_MODULUS

__all__ = ["SequenceTracker"]

#: A jump this large is not loss but a device that restarted without a HELLO (or a replay).
MAX_COUNTED_GAP = SEQ_MODULUS // 2


class SequenceTracker:
    """Follows one sender's 16-bit, wrapping sequence numbers."""

    def __init__(self) -> None:
        self._expected: int | None = None
        self.lost = 0
        self.gaps = 0
        self.resyncs = 0

    def reset(self) -> None:
        """Start over (the device restarted): the next number is taken as it comes."""
        self._expected = None

    def observe(self, seq: int) -> int:
        """Record ``seq``; return how many frames were lost just before it."""
        expected, self._expected = self._expected, (seq + 1) % SEQ_MODULUS
        if expected is None or seq == expected:
            return 0
        missing = (seq - expected) % SEQ_MODULUS
        if missing >= MAX_COUNTED_GAP:
            self.resyncs += 1
            return 0
        self.lost += missing
        self.gaps += 1
        return missing
