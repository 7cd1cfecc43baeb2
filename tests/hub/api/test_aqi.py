"""``/api/v1/aqi`` and ``/api/v1/who`` on every back-end: readings written over the last hours
give the index the library computes from their hourly means."""

from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient

from fabcity import aqi
from fabcity.reading import Reading, format_ts
from hub.api.routes import aqi as aqi_route
from hub.config import SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.base import Storage
from tests.hub.api.conftest import T0_MS, announce, reading, rejected

HOUR_MS = 3_600_000
NOW_MS = T0_MS + 12 * HOUR_MS + 20 * 60_000  # 12:20 UTC: hours 00:00-12:00 are complete
INDEX_HOUR_END_MS = T0_MS + 12 * HOUR_MS


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aqi_route, "now_ms", lambda: NOW_MS)


def _hourly(metric: str, means: Sequence[float | None], *, device: str = "pi-air",
            site: str = "street-12", sensor: str = "air", unit: str | None = None
            ) -> list[Reading]:
    """Two readings per hour (mean ± 1) for the 12 complete hours before 12:00; oldest first."""
    out = []
    for k, mean in enumerate(means[-12:]):
        if mean is None:
            continue
        start = INDEX_HOUR_END_MS - (len(means[-12:]) - k) * HOUR_MS
        out += [reading(metric, mean - 1, start + 10 * 60_000, site=site, device=device,
                        sensor=sensor, unit=unit),
                reading(metric, mean + 1, start + 40 * 60_000, site=site, device=device,
                        sensor=sensor, unit=unit)]
    return out


def _device(body: dict[str, object], device: str) -> dict[str, object]:
    found = [d for d in body["devices"] if d["device"] == device]  # type: ignore[attr-defined]
    assert len(found) == 1, body
    result: dict[str, object] = found[0]
    return result


PM25_HOURS = [12.0, 14.0, 15.0, 18.0, 25.0, 31.0, 40.0, 38.0, 36.0, 41.0, 44.0, 52.0]
PM10_HOURS = [30.0] * 10 + [60.0, 70.0]


def test_us_epa_index_is_the_nowcast_of_the_hourly_means(client: TestClient,
                                                         storage: Storage) -> None:
    storage.write(_hourly("pm2_5", PM25_HOURS) + _hourly("pm10", PM10_HOURS))
    body = client.get("/api/v1/aqi").json()
    assert body["standard"] == "us-epa"
    assert body["at"] == format_ts(INDEX_HOUR_END_MS)
    dev = _device(body, "pi-air")
    pm25 = aqi.us_epa("pm2_5", aqi.nowcast(PM25_HOURS))
    pm10 = aqi.us_epa("pm10", aqi.nowcast(PM10_HOURS))
    assert pm25.index > pm10.index  # PM2.5 sets the index
    rows = {p["pollutant"]: p for p in dev["pollutants"]}  # type: ignore[attr-defined]
    assert rows["pm2_5"]["index"] == pm25.index
    assert rows["pm2_5"]["concentration"] == pytest.approx(pm25.concentration)
    assert (rows["pm2_5"]["averaging"], rows["pm2_5"]["unit"]) == ("nowcast", "ug/m3")
    assert rows["pm10"]["index"] == pm10.index
    assert (dev["index"], dev["pollutant"], dev["category"], dev["colour"]) == (
        pm25.index, "pm2_5", pm25.category, pm25.colour)
    assert dev["label"] == pm25.label
    assert dev["note"] is None


@pytest.mark.parametrize(("level", "index", "category"), [
    (9.0, 50, "good"), (9.09, 50, "good"), (9.1, 51, "moderate"), (9.19, 51, "moderate")])
def test_us_epa_band_crossing_at_the_good_moderate_breakpoint(
        client: TestClient, storage: Storage, level: float, index: int, category: str) -> None:
    storage.write([reading("pm2_5", level, INDEX_HOUR_END_MS - k * HOUR_MS + 60_000,
                           site="street-12", device="pi-air") for k in range(1, 13)])
    dev = _device(client.get("/api/v1/aqi").json(), "pi-air")
    assert (dev["index"], dev["category"]) == (index, category)


def test_us_epa_gases_use_their_windows_and_units(client: TestClient,
                                                  storage: Storage) -> None:
    # NO2 in ppb, the last hour; CO in ppm, 8 hours; ozone in ppb, converted to ppm.
    storage.write(_hourly("no2", [40.0] * 11 + [120.0], unit="ppb")
                  + _hourly("co", [2.0] * 4 + [10.0] * 8, unit="ppm")
                  + _hourly("o3", [60.0] * 12, unit="ppb"))
    dev = _device(client.get("/api/v1/aqi").json(), "pi-air")
    rows = {(p["pollutant"], p["averaging"]): p for p in dev["pollutants"]}  # type: ignore
    # NO2 120 ppb: 101 + 49 * 19 / 259 = 104.6; CO 10 ppm: 101 + 49 * 0.5 / 2.9 = 109.4
    assert rows[("no2", "1h")]["index"] == aqi.us_epa("no2", 120).index == 105
    assert rows[("co", "8h")]["index"] == aqi.us_epa("co", 10.0).index == 109
    assert rows[("o3", "8h")]["concentration"] == pytest.approx(0.060)
    assert rows[("o3", "8h")]["unit"] == "ppm"
    assert rows[("o3", "8h")]["index"] == 67  # 51 + 49 * 0.005 / 0.015 = 67.3
    assert (dev["pollutant"], dev["index"]) == ("co", 109)


def test_eu_caqi_grades_the_last_complete_hour(client: TestClient, storage: Storage) -> None:
    storage.write(_hourly("pm10", [80.0] * 11 + [30.0]) + _hourly("pm2_5", [20.0] * 12)
                  + _hourly("no2", [60.0] * 12, unit="ppb"))
    dev = _device(client.get("/api/v1/aqi", params={"standard": "eu-caqi"}).json(), "pi-air")
    rows = {p["pollutant"]: p for p in dev["pollutants"]}  # type: ignore[attr-defined]
    assert rows["pm10"]["index"] == aqi.eu_caqi("pm10", 30.0).index == 30
    assert rows["pm2_5"]["index"] == aqi.eu_caqi("pm2_5", 20.0).index == 33
    no2_ug = aqi.convert("no2", 60.0, "ppb", "ug/m3", aqi.MOLAR_VOLUME_20C_L)  # 114.8
    assert rows["no2"]["index"] == aqi.eu_caqi("no2", no2_ug).index == 54
    assert (rows["no2"]["category"], rows["no2"]["colour"]) == ("medium", "#EEC20B")
    assert (dev["index"], dev["pollutant"], dev["category"]) == (54, "no2", "medium")


def test_unknown_standard_is_refused_naming_standard(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/aqi", params={"standard": "uk-daqi"}), "standard")
    assert "us-epa" in message and "eu-caqi" in message


def test_unknown_parameter_is_refused(client: TestClient) -> None:
    rejected(client.get("/api/v1/aqi", params={"pollutant": "pm2_5"}), "pollutant")
    rejected(client.get("/api/v1/who", params={"device": "pi-air"}), "device")


def test_device_without_recent_data_has_a_null_index_and_says_why(
        client: TestClient, storage: Storage, registry: DeviceRegistry) -> None:
    storage.write([reading("pm2_5", 10.0, T0_MS - 48 * HOUR_MS, site="street-12",
                           device="pi-old"),
                   reading("pm2_5", 10.0, INDEX_HOUR_END_MS - 30 * 60_000, site="street-12",
                           device="pi-once")])
    announce(registry, "street-12", "pi-new", "online", NOW_MS,
             sensors=[{"name": "air", "driver": "sds011",
                       "metrics": {"pm2_5": "ug/m3", "pm10": "ug/m3"}}])
    body = client.get("/api/v1/aqi").json()
    assert [d["device"] for d in body["devices"]] == ["pi-new", "pi-old", "pi-once"]
    for name in ("pi-new", "pi-old"):
        dev = _device(body, name)
        assert (dev["index"], dev["category"], dev["pollutants"]) == (None, None, [])
        assert "no pm2_5, pm10" in dev["note"]  # type: ignore[operator]
    once = _device(body, "pi-once")  # one hour of three: NowCast needs two
    assert once["index"] is None
    assert "2 of the 3 most recent hours" in once["note"]  # type: ignore[operator]


def test_beyond_the_scale_is_hazardous_without_a_number(client: TestClient,
                                                         storage: Storage) -> None:
    storage.write(_hourly("pm2_5", [400.0] * 12))
    dev = _device(client.get("/api/v1/aqi").json(), "pi-air")
    assert (dev["index"], dev["category"], dev["pollutant"]) == (None, "hazardous", "pm2_5")
    assert "beyond the AQI" in dev["note"]  # type: ignore[operator]


def test_site_filter_names_the_sites_licence(client: TestClient, storage: Storage,
                                             ctx: HubContext) -> None:
    ctx.sites.append(SiteConfig(id="street-12", name="Street 12", licence="CC0-1.0"))
    storage.write(_hourly("pm2_5", [5.0] * 12) + _hourly("pm2_5", [5.0] * 12, site="other"))
    answer = client.get("/api/v1/aqi", params={"site": "street-12"})
    assert answer.headers["X-Data-Licence"] == "CC0-1.0"
    assert [d["site"] for d in answer.json()["devices"]] == ["street-12"]


def test_who_counts_days_above_the_24_hour_guideline(client: TestClient,
                                                     storage: Storage) -> None:
    day = 86_400_000
    # Four days of PM2.5: daily means 4, 14, 20 and 30 ug/m3; NO2 in ppb on one day.
    storage.write([reading("pm2_5", v, T0_MS - k * day + h * HOUR_MS, site="street-12",
                           device="pi-air")
                   for k, v in enumerate((30.0, 20.0, 14.0, 4.0)) for h in (1, 9, 17)]
                  + [reading("no2", 20.0, T0_MS + HOUR_MS, site="street-12", device="pi-air",
                             unit="ppb")])
    body = client.get("/api/v1/who").json()
    assert body["year"] == 2026
    assert body["end"] == format_ts(NOW_MS)
    (dev,) = body["devices"]
    rows = {p["pollutant"]: p for p in dev["pollutants"]}
    pm = rows["pm2_5"]
    assert (pm["days_with_data"], pm["days_above_daily"]) == (4, 2)
    assert pm["annual_mean"] == pytest.approx(17.0)
    assert (pm["annual_guideline"], pm["daily_guideline"], pm["annual_above"]) == (5, 15, True)
    no2 = rows["no2"]
    assert no2["annual_mean"] == pytest.approx(aqi.convert("no2", 20.0, "ppb", "ug/m3"))
    assert (no2["days_above_daily"], no2["daily_guideline"]) == (1, 25)  # 37.6 > 25
    assert client.get("/api/v1/who", params={"year": 2025}).json()["devices"] == []


def test_who_year_is_validated(client: TestClient) -> None:
    rejected(client.get("/api/v1/who", params={"year": "last"}), "year")
    rejected(client.get("/api/v1/who", params={"year": 1900}), "year")
