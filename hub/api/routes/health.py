"""``GET /api/v1/health``: is the hub connected and able to store?"""

from typing import Literal

from fastapi import APIRouter

from fabcity import __version__
from fabcity.errors import FabcityError
from fabcity.reading import format_ts
from hub.api.broker_check_models import BrokerCheckHealth
from hub.api.deps import ContextDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.forward_models import ForwarderHealth, HealthWithForwarders
from hub.api.schemas import MqttHealth, StorageHealth

router = APIRouter(prefix="/api/v1/health", tags=["health"], responses=ERROR_RESPONSES)


@router.get("", response_model=HealthWithForwarders)
def health(ctx: ContextDep) -> HealthWithForwarders:
    """Always 200 while the API runs; ``status`` says ``degraded`` and which part when MQTT,
    storage writes or rollups are not fine."""
    since = None
    problem = ctx.storage_problem()
    if problem is not None:  # what ingest met on its last write wins over a probe
        storage, since = f"unavailable: {problem[0]}", format_ts(problem[1])
    else:
        try:
            storage = ctx.storage.health()
        except (FabcityError, OSError) as exc:
            storage = f"error: {exc}"
    rollups = ctx.rollup_problem() or "ok"
    connected = bool(ctx.mqtt_connected())
    healthy = connected and storage == "ok" and rollups == "ok"
    status: Literal["ok", "degraded"] = "ok" if healthy else "degraded"
    check = ctx.broker_check()
    broker_check = BrokerCheckHealth.of(check) if check is not None else None
    forwarders = [ForwarderHealth(name=f.name, to=f.to, lag_s=f.lag_s,
                                  forwarded_until=f.forwarded_until, status=f.status)
                  for f in ctx.forwarders()]
    return HealthWithForwarders(
        status=status, version=__version__, mqtt=MqttHealth(connected=connected,
                                                            broker_check=broker_check),
        storage=StorageHealth(status=storage, backend=ctx.storage.describe(), since=since,
                              dead_letters=ctx.dead_letters(), rollups=rollups),
        forwarders=forwarders)
