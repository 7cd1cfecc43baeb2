"""What the API needs from the running hub, in one object passed to ``create_app``."""

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.apikeys import ApiKeys
from hub.broker_check import BrokerCheck
from hub.config import ApiConfig, OpenDataConfig, SiteConfig
from hub.forward.base import ForwarderStatus
from hub.live import LiveBroadcaster
from hub.metrics import HubMetrics
from hub.provisioning import Provisioner
from hub.registry import DeviceRegistry
from hub.storage.base import Storage

__all__ = ["HubContext"]


@dataclass
class HubContext:
    """Storage, registry, metrics and probes of the running parts."""

    storage: Storage
    registry: DeviceRegistry
    metrics: HubMetrics = field(default_factory=HubMetrics)
    sites: list[SiteConfig] = field(default_factory=list)
    open_data: OpenDataConfig = field(default_factory=OpenDataConfig)
    mqtt_connected: Callable[[], bool] = lambda: False
    #: Why ingest cannot write and since when (epoch ms), or None.
    storage_problem: Callable[[], tuple[str, int] | None] = lambda: None
    dead_letters: Callable[[], int] = lambda: 0
    rollup_problem: Callable[[], str | None] = lambda: None
    #: Each forwarder's lag and state (``[[forward]]``).
    forwarders: Callable[[], list[ForwarderStatus]] = lambda: []
    #: The live stream's fan-out, fed by ingest (``GET /api/v1/stream``).
    live: LiveBroadcaster = field(default_factory=LiveBroadcaster)
    #: API keys (admin routes) and device provisioning; None: admin routes answer 401/503.
    api_keys: ApiKeys | None = None
    provisioner: Provisioner | None = None
    #: ``[api]``: the storage query limits (:mod:`hub.api.limits`).
    api: ApiConfig = field(default_factory=ApiConfig)
    #: What the start-up broker check found (hub.broker_check); None: not run.
    broker_check: Callable[[], BrokerCheck | None] = lambda: None

    def site(self, site_id: str) -> SiteConfig | None:
        """The declared site with this id, if any."""
        return next((s for s in self.sites if s.id == site_id), None)

    def licence(self, site_id: str | None) -> str:
        """The licence of a site's data (the hub's default for undeclared sites)."""
        declared = self.site(site_id) if site_id else None
        return declared.licence if declared else self.open_data.licence
