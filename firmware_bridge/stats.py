"""Counters of one link, for the monitor and the driver's logs."""

from dataclasses import dataclass

from firmware_bridge.frame import DecoderStats
from firmware_bridge.sequence import SequenceTracker

__all__ = ["LinkStats"]


@dataclass(frozen=True, slots=True)
class LinkStats:
    """A snapshot of a link's counters."""

    frames: int = 0
    bad_checksum: int = 0
    malformed: int = 0
    truncated: int = 0
    overlong: int = 0
    noise_bytes: int = 0
    bad_messages: int = 0
    unknown_kinds: int = 0
    refused_hellos: int = 0
    lost_frames: int = 0
    gaps: int = 0
    reboots: int = 0
    reconnects: int = 0

    @classmethod
    def collect(
        cls, decoder: DecoderStats, sequence: SequenceTracker, **session: int
    ) -> "LinkStats":
        return cls(
            frames=decoder.frames,
            bad_checksum=decoder.bad_checksum,
            malformed=decoder.malformed,
            truncated=decoder.truncated,
            overlong=decoder.overlong,
            noise_bytes=decoder.noise_bytes,
            lost_frames=sequence.lost,
            gaps=sequence.gaps,
            **session,
        )

    def summary(self) -> str:
        """One line, e.g. ``frames 120 | bad checksum 1 | lost 3 in 2 gaps | ...``."""
        return (
            f"frames {self.frames} | bad checksum {self.bad_checksum} | "
            f"malformed {self.malformed} | truncated {self.truncated} | "
            f"lost {self.lost_frames} in {self.gaps} gaps | overlong {self.overlong} | "
            f"bad messages {self.bad_messages} | unknown kinds {self.unknown_kinds} | "
            f"refused HELLOs {self.refused_hellos} | noise {self.noise_bytes} B | "
            f"reboots {self.reboots} | reconnects {self.reconnects}"
        )
