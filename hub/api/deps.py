"""Typed dependencies shared by the routers."""

import functools
import inspect
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from fabcity.names import SENSOR_PATTERN, SITE_PATTERN
from fabcity.reading import format_ts, now_ms
from hub.api.cursor import Cursor
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


# The dependencies are coroutines although they never wait: FastAPI runs a plain function in
# its worker-thread pool, a hop to another thread and back for each one on every request.


async def get_context(request: Request) -> HubContext:
    """The :class:`HubContext` given to ``create_app``."""
    ctx: HubContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[HubContext, Depends(get_context)]


async def get_storage(ctx: ContextDep) -> Storage:
    return ctx.storage


async def get_registry(ctx: ContextDep) -> DeviceRegistry:
    return ctx.registry


StorageDep = Annotated[Storage, Depends(get_storage)]
RegistryDep = Annotated[DeviceRegistry, Depends(get_registry)]

_SITE = SITE_PATTERN
_NAME = SENSOR_PATTERN
SiteDep = Annotated[str | None, Query(pattern=_SITE, description="site name, e.g. fablab-bcn")]
DeviceDep = Annotated[str | None, Query(pattern=_SITE, description="device name, e.g. pi-laser")]
SensorDep = Annotated[str | None, Query(pattern=_NAME, description="sensor name, e.g. air")]
MetricDep = Annotated[str | None, Query(pattern=_NAME, description="metric name, e.g. pm2_5")]


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_parameters(request: Request) -> None:
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
        limit: Annotated[int | None, Query(
            ge=1, le=MAX_LIMIT, description=f"most readings returned (JSON default "
                                            f"{DEFAULT_LIMIT}; CSV default: all of them)")] = None,
        format: Annotated[Literal["json", "csv"], Query(
            description="json, or csv for a download with a header row")] = "json",
        cursor: Annotated[str | None, Query(
            max_length=400, description="continue after the page that gave this `next`")] = None,
        tz: Annotated[str | None, Query(
            max_length=64, description="IANA time zone of CSV timestamps, e.g. Europe/Madrid "
                                       "(JSON stays UTC)")] = None,
    ) -> None:
        now = now_ms()
        #: The instant relative times were resolved against.
        self.now_ms = now
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
        #: What the client asked for (None: the format's default).
        self.limit_given = limit
        self.limit = DEFAULT_LIMIT if limit is None else limit
        self.zone = _zone(tz)
        self.tz = tz
        #: Both ends absolute and the end already past: the answer describes a closed range.
        self.closed = end_ms <= now and _absolute(start) and _absolute(end)
        self.query = ReadingQuery(
            start_ms=start_ms, end_ms=end_ms, site=site, device=device, sensor=sensor,
            metric=metric, every_ms=every_ms, agg=agg or "mean", limit=self.limit + 1,
        )
        self.cursor = None if cursor is None else Cursor.decode(cursor)
        if self.cursor is not None:
            self.cursor.check(self.query)


def _absolute(instant: str) -> bool:
    return instant != "now" and not instant.startswith("-")


def _zone(tz: str | None) -> ZoneInfo | None:
    """The IANA zone named ``tz`` (None for UTC), or 422 naming ``tz``."""
    if tz is None:
        return None
    try:
        if tz in _zone_names():
            return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    raise ApiError("tz", f"unknown time zone {tz!r}: expected an IANA name such as "
                             "Europe/Madrid, America/Bogota or UTC")


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


async def _readings_request(**parameters: Any) -> ReadingsRequest:
    """:class:`ReadingsRequest` as a coroutine dependency (see :func:`get_context`); it takes
    the class's query parameters (``__signature__`` below)."""
    return ReadingsRequest(**parameters)


_readings_request.__signature__ = inspect.signature(ReadingsRequest)  # type: ignore[attr-defined]
ReadingsRequestDep = Annotated[ReadingsRequest, Depends(_readings_request)]
