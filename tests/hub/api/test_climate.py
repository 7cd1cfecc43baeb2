"""/api/v1/climate/emissions, /api/v1/climate/inventory.csv and /api/v1/machines on every
back-end; the figures are those of the worked example in docs/climate.md."""

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fabcity.reading import Reading, parse_ts
from hub.api import create_app
from hub.climate.inventory import COLUMNS, GPC_ROWS
from hub.config import SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import Storage
from tests.hub.api.conftest import rejected

SITES = [
    SiteConfig(id="fablab-bcn", name="Fab Lab", licence="ODbL-1.0", gpc_sector="I.2",
               grid_kgco2e_per_kwh={"2026": 0.25}, grid_loss_factor=0.06,
               fuel_combustion=False),
    SiteConfig(id="makers-x", name="Makerspace", gpc_sector="I.3", grid_kgco2e_per_kwh=0.3,
               grid_losses_included=True),
]

DOC_LINE = ("I.2.2,2,Stationary energy,Commercial and institutional buildings and facilities,"
            "Grid-supplied energy consumed within the city boundary,,7.800,kWh,0.250000,"
            "kgCO2e/kWh,,,,0.001950,L,,grid electricity metered at fablab-bcn; coverage 0.01%")


def _at(text: str) -> int:
    return parse_ts(f"2026-01-10T{text}:00Z")


def _example(storage: Storage) -> None:
    """The worked example: a main meter replaced mid-morning, a CNC with power only."""
    meter = [("00:00", 5000), ("06:00", 9000), ("07:00", 1000), ("12:00", 3000)]
    spindle = [("09:00", 0), ("09:10", 1200), ("09:20", 1200), ("09:30", 1200), ("09:40", 1200),
               ("09:50", 0)]
    storage.write([Reading("fablab-bcn", "pi-main", "meter", "energy", v, _at(t), "Wh")
                   for t, v in meter]
                  + [Reading("fablab-bcn", "pi-cnc", "spindle", "power", v, _at(t), "W")
                     for t, v in spindle])


@pytest.fixture
def climate(storage: Storage, registry: DeviceRegistry) -> Iterator[TestClient]:
    _example(storage)
    ctx = HubContext(storage=storage, registry=registry, sites=SITES)
    with TestClient(create_app(ctx)) as c:
        yield c


def test_emissions_per_month_match_the_worked_example(climate: TestClient) -> None:
    answer = climate.get("/api/v1/climate/emissions?site=fablab-bcn&year=2026&period=month")
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Data-Licence"] == "ODbL-1.0"
    [site] = answer.json()["sites"]
    january = site["periods"][0]
    assert len(site["periods"]) == 12
    assert january["start"] == "2026-01-01T00:00:00.000Z"
    grid, losses = january["rows"]
    assert (grid["scope"], grid["gpc_ref"], grid["unit"]) == (2, "I.2.2", "kWh")
    assert grid["activity"] == pytest.approx(7.8)  # 7.0 metered (one reset) + 0.8 integrated
    assert grid["factor"] == 0.25
    assert grid["tco2e"] == pytest.approx(0.00195)
    assert grid["coverage"] == pytest.approx(50 / (31 * 1440))  # the spindle: 50 minutes
    amounts = {s["device"]: s["amount"] for s in grid["series"]}
    assert amounts == pytest.approx({"pi-main": 7.0, "pi-cnc": 0.8})
    assert (losses["scope"], losses["gpc_ref"]) == (3, "I.2.3")
    assert losses["activity"] == pytest.approx(0.468)
    assert losses["tco2e"] == pytest.approx(0.000117)
    assert january["tco2e"] == pytest.approx(0.002067)
    assert site["periods"][1]["rows"][0]["activity"] == 0


def test_inventory_csv_rows_carry_figures_or_notation_keys(climate: TestClient) -> None:
    answer = climate.get("/api/v1/climate/inventory.csv?year=2026")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["X-Data-Licence"] == "ODbL-1.0, CC-BY-4.0"
    table = list(csv.reader(io.StringIO(answer.text)))
    assert tuple(table[0]) == COLUMNS
    rows = {r[0]: dict(zip(COLUMNS, r, strict=True)) for r in table[1:]}
    assert [r[0] for r in table[1:]] == [ref for ref, *_ in GPC_ROWS]
    grid = rows["I.2.2"]
    assert (grid["Scope"], grid["Notation key"], grid["Activity amount"], grid["Activity unit"],
            grid["Emission factor"], grid["Total (tCO2e)"], grid["Data quality (AD)"]) == (
        "2", "", "7.800", "kWh", "0.250000", "0.001950", "L")
    assert (rows["I.2.3"]["Activity amount"], rows["I.2.3"]["Total (tCO2e)"]) == (
        "0.468", "0.000117")
    assert DOC_LINE in answer.text.splitlines()  # the line docs/climate.md shows
    assert rows["I.2.1"]["Notation key"] == "NO"  # fuel_combustion = false
    assert rows["I.3.3"]["Notation key"] == "IE"  # losses in the makerspace's grid factor
    assert rows["I.3.2"]["Notation key"] == "NE"  # no meter there yet
    for ref in ("I.1.2", "I.4.4", "II.1.1", "III.4.2", "IV.1", "V.3", "VI.1"):
        assert rows[ref]["Notation key"] == "NE", ref
        assert rows[ref]["Total (tCO2e)"] == ""


def test_machines_per_day_and_as_csv(climate: TestClient) -> None:
    query = "site=fablab-bcn&start=2026-01-10T00:00:00Z&end=2026-01-11T00:00:00Z"
    answer = climate.get(f"/api/v1/machines?{query}")
    assert answer.status_code == 200, answer.text
    machines = {m["device"]: m for m in answer.json()["machines"]}
    assert machines["pi-cnc"]["kwh_source"] == "power"
    assert machines["pi-cnc"]["periods"][0]["kwh"] == pytest.approx(0.8)
    assert machines["pi-main"]["periods"][0]["kwh"] == pytest.approx(7.0)
    table = list(csv.DictReader(io.StringIO(
        climate.get(f"/api/v1/machines?{query}&format=csv").text)))
    assert [r["device"] for r in table] == ["pi-cnc", "pi-main"]
    assert [float(r["kwh"]) for r in table] == pytest.approx([0.8, 7.0])


@pytest.mark.parametrize(("url", "parameter"), [
    ("/api/v1/climate/emissions?site=nowhere", "site"),
    ("/api/v1/climate/emissions?period=week", "period"),
    ("/api/v1/climate/emissions?year=twenty", "year"),
    ("/api/v1/climate/emissions?yaer=2026", "yaer"),
    ("/api/v1/climate/inventory.csv?year=1900", "year"),
    ("/api/v1/machines?start=2024-01-01T00:00:00Z&end=2026-01-01T00:00:00Z", "end"),
    ("/api/v1/machines?start=now&end=-1d", "start"),
    ("/api/v1/machines?period=year", "period"),
])
def test_bad_parameters_answer_422_naming_them(climate: TestClient, url: str,
                                              parameter: str) -> None:
    rejected(climate.get(url), parameter)
