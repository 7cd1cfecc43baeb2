"""What the API needs from the running hub, in one object passed to ``create_app``."""

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import Storage

__all__ = ["HubContext"]


@dataclass
class HubContext:
    """Storage, registry, metrics and a probe of the MQTT link."""

    storage: Storage
    registry: DeviceRegistry
    metrics: HubMetrics = field(default_factory=HubMetrics)
    mqtt_connected: Callable[[], bool] = lambda: False
