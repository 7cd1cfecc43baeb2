"""Response models of ``/api/v1/aqi`` and ``/api/v1/who`` (field names are a contract: the
citizen dashboard reads them)."""

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "AqiPublic",
    "DeviceIndexPublic",
    "PollutantIndexPublic",
    "Standard",
    "WhoDevicePublic",
    "WhoPollutantPublic",
    "WhoPublic",
]

Standard = Literal["us-epa", "eu-caqi"]


class PollutantIndexPublic(BaseModel):
    """The index of one pollutant measured by one sensor, over its standard's window."""

    pollutant: str = Field(examples=["pm2_5"])
    sensor: str = Field(description="the sensor that measured it", examples=["sds011"])
    concentration: float = Field(description="the averaged concentration graded, in unit "
                                             "(after the standard's truncation)")
    unit: str = Field(examples=["ug/m3"])
    averaging: str = Field(description='"nowcast", "1h" or "8h"', examples=["nowcast"])
    index: int
    category: str = Field(examples=["moderate"])
    label: str = Field(examples=["Moderate"])
    colour: str = Field(examples=["#FFFF00"])


class DeviceIndexPublic(BaseModel):
    """One device's current index: the highest of its pollutants' indices."""

    site: str
    device: str
    index: int | None = Field(description="null without enough recent data (see note)")
    category: str | None
    label: str | None
    colour: str | None
    pollutant: str | None = Field(description="the pollutant that sets the index")
    pollutants: list[PollutantIndexPublic] = []
    note: str | None = Field(None, description="why the index is null or a pollutant is "
                                               "left out")


class AqiPublic(BaseModel):
    """``GET /api/v1/aqi``."""

    standard: Standard
    at: str = Field(description="RFC 3339 UTC: end of the last complete hour, which the "
                                "indices describe")
    devices: list[DeviceIndexPublic]


class WhoPollutantPublic(BaseModel):
    """A year so far of one pollutant against the WHO 2021 guidelines (ug/m3)."""

    pollutant: str
    sensor: str
    unit: Literal["ug/m3"] = "ug/m3"
    annual_mean: float | None = Field(description="mean of the daily means so far")
    annual_guideline: float
    annual_above: bool | None
    days_with_data: int
    days_above_daily: int = Field(description="days whose 24-hour mean is above the guideline")
    daily_guideline: float


class WhoDevicePublic(BaseModel):
    site: str
    device: str
    pollutants: list[WhoPollutantPublic]


class WhoPublic(BaseModel):
    """``GET /api/v1/who``: days are UTC days."""

    year: int
    start: str
    end: str = Field(description="exclusive: now for the current year")
    devices: list[WhoDevicePublic]
