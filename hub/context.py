"""What the API needs from the running hub, in one object passed to ``create_app``."""

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import Storage

__all__ = ["HubContext"]


@dataclass
class HubContext:
    """Storage, registry, metrics and probes of the running parts."""

    storage: Storage
    registry: DeviceRegistry
    metrics: HubMetrics = field(default_factory=HubMetrics)
    mqtt_connected: Callable[[], bool] = lambda: False
    #: Why ingest cannot write and since when (epoch ms), or None.
    storage_problem: Callable[[], tuple[str, int] | None] = lambda: None
    dead_letters: Callable[[], int] = lambda: 0
    rollup_problem: Callable[[], str | None] = lambda: None
