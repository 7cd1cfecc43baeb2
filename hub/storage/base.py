"""The storage interface every back-end implements.

Back-ends translate their library's errors: "try again later" becomes
:class:`fabcity.errors.StorageUnavailable`; nothing else may escape ``write``. Writes are
idempotent on the reading identity, so a replayed batch stores nothing twice.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fabcity import registry
from fabcity.reading import Reading

__all__ = ["Aggregate", "ReadingQuery", "Storage", "open_storage"]

Aggregate = Literal["mean", "min", "max", "last"]


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    """Which readings to return; ``every_ms`` set means downsample with ``agg``."""

    start_ms: int
    end_ms: int
    site: str | None = None
    device: str | None = None
    sensor: str | None = None
    metric: str | None = None
    every_ms: int | None = None
    agg: Aggregate = "mean"
    limit: int = 10_000


class Storage(ABC):
    """Where the hub keeps readings."""

    @abstractmethod
    def write(self, readings: Sequence[Reading]) -> int:
        """Store ``readings`` durably; return how many were new (replays count 0).

        Returns only once the data survives a crash of this process.
        """

    @abstractmethod
    def query(self, q: ReadingQuery) -> list[Reading]:
        """Raw readings, or one reading per bucket start when ``q.every_ms`` is set.

        Ordered by site, device, sensor, metric, then time.
        """

    @abstractmethod
    def latest(
        self, site: str | None = None, device: str | None = None, metric: str | None = None
    ) -> list[Reading]:
        """The newest reading of every (site, device, sensor, metric) matching the filters."""

    def health(self) -> str:
        """``"ok"`` or a short description of what is wrong."""
        return "ok"

    @abstractmethod
    def close(self) -> None:
        """Release connections; safe to call twice."""


def open_storage(backend: str, **options: Any) -> Storage:
    """Instantiate the back-end registered as ``backend`` with its config options."""
    cls = registry.load("fabcity.storage", backend)
    storage: Storage = cls(**options)
    return storage
