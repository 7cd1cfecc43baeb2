"""``GET /metrics``: the hub's counters in the Prometheus text format."""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api.deps import ContextDep

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get("", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(ctx: ContextDep) -> Response:
    """Messages in, readings stored, rejections by reason, write latency, MQTT link."""
    ctx.metrics.mqtt_connected.set(1 if ctx.mqtt_connected() else 0)
    return Response(generate_latest(ctx.metrics.prometheus), media_type=CONTENT_TYPE_LATEST)
