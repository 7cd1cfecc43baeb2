"""Response models of the HTTP API (``…Public``: what the outside world sees)."""

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from fabcity.device import DeviceMeta
from fabcity.reading import Reading, format_ts
from hub.api.broker_check_models import BrokerCheckHealth
from hub.config import SiteConfig
from hub.registry import DeviceRecord

__all__ = [
    "DeviceMetaPublic",
    "DevicePublic",
    "DevicesPublic",
    "ErrorPublic",
    "HealthPublic",
    "LatestPublic",
    "LocationPublic",
    "ParameterError",
    "ReadingPublic",
    "ReadingsPublic",
    "SensorPublic",
    "SitePublic",
    "SitesPublic",
    "site_of",
    "sites_of",
]

DeviceState = Literal["online", "offline", "unknown"]


class ParameterError(BaseModel):
    """One rejected query parameter."""

    parameter: str = Field(examples=["start"])
    message: str = Field(examples=["invalid time 'yesterday': expected RFC 3339 or -24h"])


class ErrorPublic(BaseModel):
    """Every error answer: a human sentence, plus the parameters at fault on a 422."""

    detail: str
    errors: list[ParameterError] = []


class StorageHealth(BaseModel):
    status: str = Field(description='"ok" or what is wrong', examples=["ok"])
    backend: str = Field(description="where readings are stored (no secrets)",
                         examples=["SqliteStorage(fabcity-hub.db)"])
    since: str | None = Field(None, description="RFC 3339: when the current problem began")
    dead_letters: int = Field(0, description="readings refused for good, kept for replay")
    rollups: str = Field("ok", description='"ok" or why rollups are paused')


class MqttHealth(BaseModel):
    connected: bool
    broker_check: BrokerCheckHealth | None = Field(
        None, description="the start-up broker check; null when [mqtt] probe is off")


class HealthPublic(BaseModel):
    """``ok`` when the broker link and the storage are both fine, else ``degraded``."""

    status: Literal["ok", "degraded"]
    version: str
    mqtt: MqttHealth
    storage: StorageHealth


class ReadingPublic(BaseModel):
    """One reading; in downsampled answers ``ts`` is the start of the bucket."""

    site: str
    device: str
    sensor: str
    metric: str
    ts: str = Field(description="RFC 3339 UTC", examples=["2026-11-26T22:05:00.123Z"])
    value: float
    unit: str | None
    flags: list[str] = []

    @classmethod
    def of(cls, r: Reading) -> "ReadingPublic":
        return cls(site=r.site, device=r.device, sensor=r.sensor, metric=r.metric,
                   ts=format_ts(r.ts_ms), value=r.value, unit=r.unit, flags=list(r.flags))


class LatestPublic(BaseModel):
    """The newest reading of every matching series."""

    now: str = Field(description="the hub's clock when it answered, RFC 3339 UTC")
    count: int
    readings: list[ReadingPublic]


class ReadingsQueryPublic(BaseModel):
    """The query as the hub understood it (relative times resolved)."""

    site: str | None
    device: str | None
    sensor: str | None
    metric: str | None
    start: str
    end: str
    every: str | None
    agg: str | None
    limit: int


class ReadingsPublic(BaseModel):
    """Readings ordered by site, device, sensor, metric, then time."""

    query: ReadingsQueryPublic
    count: int
    truncated: bool = Field(description="true when more readings matched than `limit`")
    readings: list[ReadingPublic]


class LocationPublic(BaseModel):
    lat: float
    lon: float


class SensorPublic(BaseModel):
    name: str
    driver: str | None = None
    metrics: dict[str, str] = Field({}, description="metric -> unit")


class DeviceMetaPublic(BaseModel):
    """What the device says it is (its retained ``meta`` message)."""

    kind: str | None = None
    name: str | None = None
    location: LocationPublic | None = None
    sensors: list[SensorPublic] = []
    firmware: str | None = None
    version: str | None = None


class DevicePublic(BaseModel):
    site: str
    device: str
    state: DeviceState = Field(description="from the retained status; unknown if none yet")
    last_seen: str | None = Field(description="RFC 3339 UTC, last status or stored reading")
    location: LocationPublic | None = Field(
        None, description="the device's own (from its meta), else its declared site's")
    meta: DeviceMetaPublic | None

    @classmethod
    def of(cls, rec: DeviceRecord) -> "DevicePublic":
        state: DeviceState = "unknown"
        if rec.state == "online":
            state = "online"
        elif rec.state == "offline":
            state = "offline"
        meta = _meta(rec.meta)
        return cls(
            site=rec.site, device=rec.device, state=state,
            last_seen=format_ts(rec.last_seen_ms) if rec.last_seen_ms is not None else None,
            location=meta.location if meta else None, meta=meta,
        )


def _meta(meta: DeviceMeta | None) -> DeviceMetaPublic | None:
    """The public view of a meta the registry validated on arrival: built, not re-validated."""
    if meta is None:
        return None
    where = meta.location
    return DeviceMetaPublic.model_construct(
        kind=meta.kind, name=meta.name, firmware=meta.firmware, version=meta.version,
        location=LocationPublic.model_construct(lat=where.lat, lon=where.lon) if where else None,
        sensors=[SensorPublic.model_construct(name=s.name, driver=s.driver,
                                              metrics=dict(s.metrics)) for s in meta.sensors])


class DevicesPublic(BaseModel):
    count: int
    devices: list[DevicePublic]


class SitePublic(BaseModel):
    """A site: declared in ``hub.toml`` (name, place, licence) and/or seen through devices."""

    site: str = Field(description="the id devices use in their topics", examples=["fablab-bcn"])
    name: str = Field(description="human name (the id when the site is not declared)",
                      examples=["Fab Lab Barcelona"])
    kind: str | None = Field(description="fablab, street, building, …", examples=["fablab"])
    description: str | None
    licence: str = Field(description="SPDX identifier of the data licence",
                         examples=["CC-BY-4.0"])
    declared: bool = Field(description="declared in the hub's configuration")
    location: LocationPublic | None = Field(
        description="the declared place, else the mean position of the site's devices")
    online: int = Field(description="devices online now")
    devices: list[DevicePublic]


class SitesPublic(BaseModel):
    count: int
    sites: list[SitePublic]


def site_of(site: str, declared: SiteConfig | None, licence: str,
            devices: list[DevicePublic]) -> SitePublic:
    """One site with its devices; a device without a location of its own takes the site's."""
    place = (LocationPublic(lat=declared.lat, lon=declared.lon)
             if declared is not None and declared.lat is not None and declared.lon is not None
             else None)
    for d in devices:
        if d.location is None:
            d.location = place
    spots = [d.location for d in devices if d.location is not None]
    if place is None and spots:
        place = LocationPublic(lat=sum(p.lat for p in spots) / len(spots),
                               lon=sum(p.lon for p in spots) / len(spots))
    return SitePublic(
        site=site, name=declared.name if declared else site,
        kind=declared.kind if declared else None,
        description=(declared.description or None) if declared else None,
        licence=licence, declared=declared is not None, location=place,
        online=sum(d.state == "online" for d in devices), devices=devices)


def sites_of(declared: list[SiteConfig], devices: list[DevicePublic],
             licence_of: Callable[[str], str]) -> SitesPublic:
    """Declared sites and sites seen through devices, ordered by id."""
    grouped: dict[str, list[DevicePublic]] = {s.id: [] for s in declared}
    for d in devices:
        grouped.setdefault(d.site, []).append(d)
    by_id = {s.id: s for s in declared}
    sites = [site_of(site, by_id.get(site), licence_of(site), members)
             for site, members in sorted(grouped.items())]
    return SitesPublic(count=len(sites), sites=sites)
