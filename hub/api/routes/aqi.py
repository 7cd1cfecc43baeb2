"""``GET /api/v1/aqi``: each device's current air-quality index (US EPA or CAQI);
``GET /api/v1/who``: a year so far against the WHO 2021 guidelines.

Both read hourly or daily means from ``Storage.query`` (``every`` + ``mean``), so every
back-end and its rollups give the same answer; the grading is :mod:`fabcity.aqi`.
"""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from fabcity import aqi
from fabcity.reading import Reading, format_ts, now_ms
from hub.api.aqi_models import (
    AqiPublic,
    DeviceIndexPublic,
    Standard,
    WhoDevicePublic,
    WhoPollutantPublic,
    WhoPublic,
)
from hub.api.aqi_windows import HOURS_NEEDED, METRICS, Series, device_index
from hub.api.deps import ContextDep, DeviceDep, SiteDep
from hub.api.errors import ERROR_RESPONSES
from hub.storage.base import HOUR_MS, ReadingQuery, Storage

__all__ = ["LICENCE_HEADER", "router"]

router = APIRouter(prefix="/api/v1", tags=["air quality"], responses=ERROR_RESPONSES)

LICENCE_HEADER = "X-Data-Licence"
DAY_MS = 86_400_000
MAX_ROWS = 100_000  # per metric and request: 12 hours or 366 days of thousands of series
WHO_METRICS = tuple(aqi.WHO_GUIDELINES)

DeviceKey = tuple[str, str]


def _means(storage: Storage, metric: str, start_ms: int, end_ms: int, every_ms: int,
           site: str | None, device: str | None) -> list[Reading]:
    return storage.query(ReadingQuery(start_ms=start_ms, end_ms=end_ms, site=site,
                                      device=device, metric=metric, every_ms=every_ms,
                                      agg="mean", limit=MAX_ROWS))


def _known_devices(ctx: ContextDep, metrics: tuple[str, ...], site: str | None,
                   device: str | None) -> set[DeviceKey]:
    """Devices that ever measured one of ``metrics`` (storage) or say they do (meta)."""
    known: set[DeviceKey] = set()
    for metric in metrics:
        known |= {(r.site, r.device)
                  for r in ctx.storage.latest(site=site, device=device, metric=metric)}
    for rec in ctx.registry.devices(site):
        if device is not None and rec.device != device:
            continue
        sensors = rec.meta.sensors if rec.meta is not None else []
        if any(m in s.metrics for s in sensors for m in metrics):
            known.add((rec.site, rec.device))
    return known


@router.get("/aqi", response_model=AqiPublic)
def air_quality_index(
    ctx: ContextDep, response: Response, site: SiteDep = None, device: DeviceDep = None,
    standard: Annotated[Standard, Query(
        description="us-epa (AQI 0-500, NowCast for particles) or eu-caqi (hourly CAQI)",
    )] = "us-epa",
) -> AqiPublic:
    """The index of every device measuring particles or gases, over the last complete hours:
    the highest of its pollutants' indices, and which pollutant sets it."""
    end_ms = now_ms() // HOUR_MS * HOUR_MS  # the last complete hour ends here
    start_ms = end_ms - HOURS_NEEDED * HOUR_MS
    metrics = METRICS[standard]
    found: dict[DeviceKey, list[Series]] = defaultdict(list)
    for metric in metrics:
        by_sensor: dict[tuple[str, str, str], Series] = {}
        for r in _means(ctx.storage, metric, start_ms, end_ms, HOUR_MS, site, device):
            key = (r.site, r.device, r.sensor)
            if key not in by_sensor:
                by_sensor[key] = Series(r.sensor, metric, r.unit, [None] * HOURS_NEEDED)
                found[(r.site, r.device)].append(by_sensor[key])
            slot = (r.ts_ms - start_ms) // HOUR_MS
            if 0 <= slot < HOURS_NEEDED:
                by_sensor[key].hours[slot] = r.value
    devices: list[DeviceIndexPublic] = []
    for site_id, device_id in sorted(found.keys() | _known_devices(ctx, metrics, site, device)):
        devices.append(device_index(standard, site_id, device_id,
                                    found.get((site_id, device_id), [])))
    if site is not None:
        response.headers[LICENCE_HEADER] = ctx.licence(site)
    return AqiPublic(standard=standard, at=format_ts(end_ms), devices=devices)


def _year_start_ms(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp() * 1000)


@router.get("/who", response_model=WhoPublic)
def who_guidelines(
    ctx: ContextDep, response: Response, site: SiteDep = None,
    year: Annotated[int | None, Query(ge=1970, le=9998,
                                      description="calendar year (UTC); default this year")
                    ] = None,
) -> WhoPublic:
    """Per device and pollutant (PM2.5, PM10, NO2): the mean of the daily means so far, days
    with data, days above the WHO 24-hour guideline, and the guideline levels."""
    now = now_ms()
    year = year if year is not None else datetime.fromtimestamp(now / 1000, UTC).year
    start_ms = _year_start_ms(year)
    end_ms = min(_year_start_ms(year + 1), now)
    per_device: dict[DeviceKey, list[WhoPollutantPublic]] = defaultdict(list)
    if start_ms < end_ms:
        for metric in WHO_METRICS:
            days: dict[tuple[str, str, str], tuple[str | None, list[float]]] = {}
            for r in _means(ctx.storage, metric, start_ms, end_ms, DAY_MS, site, None):
                days.setdefault((r.site, r.device, r.sensor), (r.unit, []))[1].append(r.value)
            for (site_id, device_id, sensor), (unit, values) in sorted(days.items()):
                try:
                    in_ug = [max(aqi.convert(metric, v, unit or "ug/m3", "ug/m3"), 0.0)
                             for v in values]
                except ValueError:
                    continue  # a unit that cannot become ug/m3: not comparable
                found = aqi.who_indicators(metric, in_ug)
                per_device[(site_id, device_id)].append(WhoPollutantPublic(
                    pollutant=metric, sensor=sensor, annual_mean=found.annual_mean,
                    annual_guideline=found.annual_guideline, annual_above=found.annual_above,
                    days_with_data=found.days_with_data, days_above_daily=found.days_above_daily,
                    daily_guideline=found.daily_guideline))
    if site is not None:
        response.headers[LICENCE_HEADER] = ctx.licence(site)
    return WhoPublic(
        year=year, start=format_ts(start_ms), end=format_ts(max(end_ms, start_ms)),
        devices=[WhoDevicePublic(site=s, device=d, pollutants=p)
                 for (s, d), p in sorted(per_device.items())])
