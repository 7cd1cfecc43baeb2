"""A year's city inventory in GPC rows, for a climate officer to paste into a reporting template.

Every GPC row is listed. The hub fills the stationary-energy rows of the sub-sectors its
sites declare (``gpc_sector``): scope 1 from metered fuel, scope 2 from grid electricity,
scope 3 from T&D losses, summed over those sites. Every other row carries a notation key:
``NE`` (not estimated: the hub measures nothing there), ``NO`` (not occurring: every site of
the sub-sector declares ``fuel_combustion = false``) or ``IE`` (included elsewhere: the grid
factor of every site already includes T&D losses).
"""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from hub.climate.emissions import EmissionRow, SiteEmissions

__all__ = ["COLUMNS", "GPC_ROWS", "InventoryRow", "data_quality", "inventory_csv",
           "inventory_rows"]

COLUMNS = (
    "GPC ref. No.", "Scope", "Sector", "Sub-sector", "Emissions source", "Notation key",
    "Activity amount", "Activity unit", "Emission factor", "Emission factor unit",
    "CO2 (t)", "CH4 (t)", "N2O (t)", "Total (tCO2e)", "Data quality (AD)",
    "Data quality (EF)", "Comments",
)

_SE = "Stationary energy"
_SUBSECTORS = {
    "I.1": "Residential buildings",
    "I.2": "Commercial and institutional buildings and facilities",
    "I.3": "Manufacturing industries and construction",
    "I.4": "Energy industries",
    "I.5": "Agriculture, forestry and fishing activities",
    "I.6": "Non-specified sources",
}
_ENERGY_SOURCES = {1: "Fuel combustion within the city boundary",
                   2: "Grid-supplied energy consumed within the city boundary",
                   3: "Transmission and distribution losses from grid-supplied energy"}


def _gpc_rows() -> list[tuple[str, int, str, str, str]]:
    """(ref, scope, sector, sub-sector, source) of every GPC row, in GPC order."""
    rows = []
    for sub, name in _SUBSECTORS.items():
        for scope, source in _ENERGY_SOURCES.items():
            rows.append((f"{sub}.{scope}", scope, _SE, name, source))
        if sub == "I.4":
            rows.append(("I.4.4", 1, _SE, name, "Energy generation supplied to the grid"))
    rows.append(("I.7.1", 1, _SE, "Fugitive emissions from coal", "Mining, processing, "
                 "storage and transportation of coal"))
    rows.append(("I.8.1", 1, _SE, "Fugitive emissions from oil and natural gas systems",
                 "Oil and natural gas systems"))
    transport = {"II.1": "On-road", "II.2": "Railways", "II.3": "Waterborne navigation",
                 "II.4": "Aviation", "II.5": "Off-road"}
    for sub, name in transport.items():
        for scope, source in ((1, "Fuel combustion within the city boundary"),
                              (2, "Grid-supplied energy consumed within the city boundary"),
                              (3, "Transboundary journeys")):
            if not (sub == "II.5" and scope == 3):
                rows.append((f"{sub}.{scope}", scope, "Transportation", name, source))
    waste = {"III.1": "Solid waste disposal", "III.2": "Biological treatment of waste",
             "III.3": "Incineration and open burning", "III.4": "Wastewater treatment and "
             "discharge"}
    for sub, name in waste.items():
        rows.append((f"{sub}.1", 1, "Waste", name, "Generated and treated within the city"))
        rows.append((f"{sub}.2", 3, "Waste", name, "Generated within, treated outside the "
                     "city"))
        rows.append((f"{sub}.3", 1, "Waste", name, "Generated outside, treated within the "
                     "city"))
    rows.append(("IV.1", 1, "IPPU", "Industrial processes", "Within the city boundary"))
    rows.append(("IV.2", 1, "IPPU", "Product use", "Within the city boundary"))
    rows.append(("V.1", 1, "AFOLU", "Livestock", "Within the city boundary"))
    rows.append(("V.2", 1, "AFOLU", "Land", "Within the city boundary"))
    rows.append(("V.3", 1, "AFOLU", "Aggregate sources and non-CO2 emission sources on land",
                 "Within the city boundary"))
    rows.append(("VI.1", 3, "Other scope 3", "Other scope 3", "Other scope 3"))
    return rows


GPC_ROWS = _gpc_rows()
_NOT_MEASURED = "not measured by the hub's sensors"


@dataclass(slots=True)
class InventoryRow:
    ref: str
    scope: int
    sector: str
    subsector: str
    source: str
    notation: str = ""
    activity: float | None = None
    unit: str = ""
    factor: float | None = None
    factor_unit: str = ""
    tco2e: float | None = None
    quality: str = ""
    comment: str = ""


def data_quality(coverage: float | None) -> str:
    """GPC's H/M/L of metered activity data, from its coverage of the year."""
    if coverage is None:
        return ""
    return "H" if coverage >= 0.95 else "M" if coverage >= 0.8 else "L"


def _filled(base: InventoryRow, parts: list[tuple[str, EmissionRow]]) -> InventoryRow:
    """``base`` with the sum of the sites' rows (same ref and unit)."""
    known = [(site, r) for site, r in parts if r.tco2e is not None]
    missing = sorted({site for site, r in parts if r.tco2e is None})
    activity = sum(r.activity for _, r in parts)
    tco2e = sum(r.tco2e or 0.0 for _, r in known)
    known_activity = sum(r.activity for _, r in known)
    coverage = min((r.coverage for _, r in parts if r.coverage is not None), default=None)
    sites = ", ".join(sorted({site for site, _ in parts}))
    comment = f"{parts[0][1].source} metered at {sites}"
    if coverage is not None:
        comment += f"; coverage {coverage:.2%}"
    if missing:
        comment += f"; no emission factor for {', '.join(missing)}: their activity is not " \
                   "in the total"
    factor = tco2e * 1000 / known_activity if known_activity else (
        parts[0][1].factor if known else None)
    return InventoryRow(base.ref, base.scope, base.sector, base.subsector, base.source,
                        "" if known else "NE", activity, parts[0][1].unit, factor,
                        parts[0][1].factor_unit, tco2e if known else None,
                        data_quality(coverage), comment)


def inventory_rows(sites: Sequence[SiteEmissions]) -> list[InventoryRow]:
    """Every GPC row for the year of ``sites`` (each computed with one period)."""
    out = []
    for ref, scope, sector, subsector, source in GPC_ROWS:
        base = InventoryRow(ref, scope, sector, subsector, source)
        sub = ref.rsplit(".", 1)[0]
        mine = [s for s in sites if s.site.gpc_sector == sub]
        if not mine or ref == "I.4.4":
            base.notation, base.comment = "NE", _NOT_MEASURED
            out.append(base)
            continue
        parts = [(s.site.id, r) for s in mine for r in s.periods[0].rows if r.gpc_ref == ref]
        units = list(dict.fromkeys(r.unit for _, r in parts))
        if units:
            out += [_filled(base, [p for p in parts if p[1].unit == u]) for u in units]
            continue
        names = ", ".join(s.site.id for s in mine)
        if scope == 1 and all(s.site.fuel_combustion is False for s in mine):
            base.notation, base.comment = "NO", f"no fuel burnt at {names}"
        elif scope == 3 and all(s.site.grid_losses_included for s in mine):
            base.notation = "IE"
            base.comment = f"T&D losses are in the grid factor of {names} ({sub}.2)"
        else:
            base.notation = "NE"
            base.comment = f"no meter or factor for this row at {names}"
        out.append(base)
    return out


def _number(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def inventory_csv(rows: Sequence[InventoryRow]) -> str:
    """The rows as CSV with a header row (:data:`COLUMNS`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow((
            r.ref, r.scope, r.sector, r.subsector, r.source, r.notation,
            _number(r.activity, 3), r.unit, _number(r.factor, 6), r.factor_unit,
            "", "", "", _number(r.tco2e, 6), r.quality, "", r.comment))
    return out.getvalue()
