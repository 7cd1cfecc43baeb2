"""``GET /api/v1/health``: is the hub connected and able to store?"""

from typing import Literal

from fastapi import APIRouter

from fabcity import __version__
from fabcity.errors import FabcityError
from hub.api.deps import ContextDep
from hub.api.errors import ERROR_RESPONSES
from hub.api.schemas import HealthPublic, MqttHealth, StorageHealth

router = APIRouter(prefix="/api/v1/health", tags=["health"], responses=ERROR_RESPONSES)


@router.get("", response_model=HealthPublic)
def health(ctx: ContextDep) -> HealthPublic:
    """Always 200 while the API runs; ``status`` says ``degraded`` if MQTT or storage is not."""
    try:
        storage = ctx.storage.health()
    except (FabcityError, OSError) as exc:
        storage = f"error: {exc}"
    connected = bool(ctx.mqtt_connected())
    status: Literal["ok", "degraded"] = "ok" if connected and storage == "ok" else "degraded"
    return HealthPublic(status=status, version=__version__, mqtt=MqttHealth(connected=connected),
                        storage=StorageHealth(status=storage))
