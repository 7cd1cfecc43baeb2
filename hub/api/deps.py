"""Typed dependencies shared by the routers."""

from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from fabcity.names import SENSOR_RE, SITE_RE
from fabcity.reading import format_ts, now_ms
from hub.api.errors import ApiError
from hub.api.params import format_duration, parse_duration, parse_instant
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import Aggregate, ReadingQuery, Storage

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_RANGE",
    "MAX_BUCKETS",
    "MAX_LIMIT",
    "MIN_EVERY_MS",
    "ContextDep",
    "DeviceDep",
    "MetricDep",
    "ReadingsRequest",
    "ReadingsRequestDep",
    "RegistryDep",
    "SensorDep",
    "SiteDep",
    "StorageDep",
    "reject_unknown_parameters",
]

DEFAULT_RANGE = "-24h"
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
MIN_EVERY_MS = 1_000
MAX_BUCKETS = 100_000  # per series: every must be at least (end - start) / MAX_BUCKETS


def get_context(request: Request) -> HubContext:
    """The :class:`HubContext` given to ``create_app``."""
    ctx: HubContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[HubContext, Depends(get_context)]


def get_storage(ctx: ContextDep) -> Storage:
    return ctx.storage


def get_registry(ctx: ContextDep) -> DeviceRegistry:
    return ctx.registry


StorageDep = Annotated[Storage, Depends(get_storage)]
RegistryDep = Annotated[DeviceRegistry, Depends(get_registry)]

_SITE = f"^{SITE_RE.pattern}$"
_NAME = f"^{SENSOR_RE.pattern}$"
SiteDep = Annotated[str | None, Query(pattern=_SITE, description="site name, e.g. fablab-bcn")]
DeviceDep = Annotated[str | None, Query(pattern=_SITE, description="device name, e.g. pi-laser")]
SensorDep = Annotated[str | None, Query(pattern=_NAME, description="sensor name, e.g. air")]
MetricDep = Annotated[str | None, Query(pattern=_NAME, description="metric name, e.g. pm2_5")]


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def reject_unknown_parameters(request: Request) -> None:
    """Refuse misspelt or repeated query parameters instead of silently ignoring them."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    for name in request.query_params:
        if name not in known:
            expected = ", ".join(sorted(known)) or "none"
            raise ApiError(name, f"unknown parameter; this endpoint takes: {expected}")
        if len(request.query_params.getlist(name)) > 1:
            raise ApiError(name, "given more than once; give it once")


class ReadingsRequest:
    """The validated parameters of ``GET /api/v1/readings``."""

    def __init__(
        self,
        site: SiteDep = None,
        device: DeviceDep = None,
        sensor: SensorDep = None,
        metric: MetricDep = None,
        start: Annotated[str, Query(
            description="RFC 3339 or relative to now, e.g. -24h; inclusive")] = DEFAULT_RANGE,
        end: Annotated[str, Query(
            description="RFC 3339, relative (e.g. -1h) or now; exclusive")] = "now",
        every: Annotated[str | None, Query(
            description="downsample into buckets of this size, e.g. 30s, 5m, 1h, 1d")] = None,
        agg: Annotated[Aggregate | None, Query(
            description="aggregate of each bucket (needs every); default mean")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT,
                                    description="most readings returned")] = DEFAULT_LIMIT,
        format: Annotated[Literal["json", "csv"], Query(
            description="json, or csv for a download with a header row")] = "json",
    ) -> None:
        now = now_ms()
        start_ms = parse_instant("start", start, now)
        end_ms = parse_instant("end", end, now)
        if start_ms >= end_ms:
            raise ApiError("start", f"must be before end (start is {format_ts(start_ms)}, "
                                    f"end is {format_ts(end_ms)})")
        every_ms = None
        if every is not None:
            every_ms = parse_duration("every", every)
            if every_ms < MIN_EVERY_MS:
                raise ApiError("every", "must be at least 1s")
            smallest = -(-(end_ms - start_ms) // MAX_BUCKETS)
            if every_ms < smallest:
                raise ApiError(
                    "every",
                    f"{every} is too small for a range of {format_duration(end_ms - start_ms)}: "
                    f"at most {MAX_BUCKETS} buckets per series; use every >= "
                    f"{format_duration(-(-smallest // 1000) * 1000)}",
                )
        elif agg is not None:
            raise ApiError("agg", "needs every (the bucket size), e.g. every=5m")
        self.every = every
        self.format = format
        self.limit = limit
        self.query = ReadingQuery(
            start_ms=start_ms, end_ms=end_ms, site=site, device=device, sensor=sensor,
            metric=metric, every_ms=every_ms, agg=agg or "mean", limit=limit + 1,
        )


ReadingsRequestDep = Annotated[ReadingsRequest, Depends()]
