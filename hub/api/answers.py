"""Response models of the open-data formats: paged readings with licences, and GeoJSON.

They extend the models of :mod:`hub.api.schemas` (adding fields only), and describe answers
that the routes serialise without building them (:mod:`hub.api.serialise`).
"""

from typing import Literal

from pydantic import BaseModel, Field

from hub.api.schemas import LatestPublic, ReadingsPublic

__all__ = [
    "DeviceFeature",
    "DeviceFeatureProperties",
    "DevicesGeoJson",
    "LatestAnswer",
    "MetricValue",
    "PointGeometry",
    "ReadingsAnswer",
]

_LICENCE = Field(description="site -> SPDX id of the licence of its data in this answer",
                 examples=[{"fablab-bcn": "CC-BY-4.0"}])
_ATTRIBUTION = Field(description="who to credit, as the licences ask",
                     examples=["fabcity contributors"])


class ReadingsAnswer(ReadingsPublic):
    """A page of readings; ``next`` continues after it when ``truncated``."""

    next: str | None = Field(None, description="cursor of the next page (pass as `cursor`), "
                                               "null on the last page")
    licence: dict[str, str] = _LICENCE
    attribution: str = _ATTRIBUTION


class LatestAnswer(LatestPublic):
    licence: dict[str, str] = _LICENCE
    attribution: str = _ATTRIBUTION


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float] = Field(description="[longitude, latitude] (WGS 84)",
                                     min_length=2, max_length=2, examples=[[2.1947, 41.3968]])


class MetricValue(BaseModel):
    """The latest value of one metric of the device."""

    sensor: str
    value: float
    unit: str | None
    ts: str = Field(description="RFC 3339 UTC")


class DeviceFeatureProperties(BaseModel):
    site: str
    site_name: str = Field(description="the declared site's name, else its id")
    device: str
    state: Literal["online", "offline", "unknown"]
    last_seen: str | None
    licence: str = Field(description="SPDX id of the licence of the site's data")
    latest: dict[str, MetricValue] = Field(description="metric -> its newest reading")


class DeviceFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str = Field(description="site/device", examples=["fablab-bcn/pi-laser"])
    geometry: PointGeometry
    properties: DeviceFeatureProperties


class DevicesGeoJson(BaseModel):
    """RFC 7946 FeatureCollection of the located devices."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[DeviceFeature]
    unlocated: int = Field(description="devices left out because no location is known")
    attribution: str
