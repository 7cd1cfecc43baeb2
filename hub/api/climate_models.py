"""Response models of the climate endpoints (emissions, machines)."""

from pydantic import BaseModel, Field

from fabcity.reading import format_ts
from hub.climate.emissions import EmissionRow
from hub.climate.machines import MachineReport

__all__ = ["EmissionRowPublic", "EmissionsPublic", "MachinePublic", "MachinesPublic",
           "PeriodEmissionsPublic", "SiteEmissionsPublic"]


class SeriesFigurePublic(BaseModel):
    device: str
    sensor: str
    metric: str
    method: str = Field(description="counter (increase of a counter) or power (trapezoid)")
    amount: float
    unit: str
    coverage: float = Field(description="share of the period with data, 0 to 1")


class EmissionRowPublic(BaseModel):
    scope: int
    gpc_ref: str | None = Field(description="GPC reference, e.g. I.2.2; null without gpc_sector")
    source: str
    activity: float
    unit: str
    factor: float | None = Field(description="kgCO2e per unit; null when not configured")
    factor_unit: str
    tco2e: float | None
    coverage: float | None = Field(description="coverage of the least-covered series")
    series: list[SeriesFigurePublic]

    @classmethod
    def of(cls, row: EmissionRow) -> "EmissionRowPublic":
        return cls(scope=row.scope, gpc_ref=row.gpc_ref, source=row.source,
                   activity=row.activity, unit=row.unit, factor=row.factor,
                   factor_unit=row.factor_unit, tco2e=row.tco2e, coverage=row.coverage,
                   series=[SeriesFigurePublic(device=s.device, sensor=s.sensor,
                                              metric=s.metric, method=s.method,
                                              amount=s.amount, unit=s.unit,
                                              coverage=s.coverage) for s in row.series])


class PeriodEmissionsPublic(BaseModel):
    start: str
    end: str
    tco2e: float | None = Field(description="all scopes; null if a row has no factor")
    rows: list[EmissionRowPublic]


class SiteEmissionsPublic(BaseModel):
    site: str
    name: str
    gpc_sector: str | None
    licence: str
    periods: list[PeriodEmissionsPublic]


class EmissionsPublic(BaseModel):
    year: int
    period: str
    sites: list[SiteEmissionsPublic]


class MachinePeriodPublic(BaseModel):
    start: str
    end: str
    kwh: float | None
    hours_running: float | None
    hours_idle: float | None
    starts: int | None
    coverage: float | None = Field(description="share of the period whose state is known")


class MachinePublic(BaseModel):
    site: str
    device: str
    sensor: str
    name: str | None
    kwh_source: str | None = Field(description="energy (counter), power (integrated) or null")
    running_source: str | None = Field(description="state, power > N W, or null (unknown)")
    periods: list[MachinePeriodPublic]

    @classmethod
    def of(cls, m: MachineReport) -> "MachinePublic":
        return cls(site=m.site, device=m.device, sensor=m.sensor, name=m.name,
                   kwh_source=m.kwh_source, running_source=m.running_source,
                   periods=[MachinePeriodPublic(
                       start=format_ts(p.period.start_ms), end=format_ts(p.period.end_ms),
                       kwh=p.kwh, hours_running=p.running_h, hours_idle=p.idle_h,
                       starts=p.starts, coverage=p.coverage) for p in m.periods])


class MachinesPublic(BaseModel):
    start: str
    end: str
    period: str
    count: int
    machines: list[MachinePublic]
