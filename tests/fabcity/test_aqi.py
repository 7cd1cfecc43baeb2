"""The air-quality indices against the tables of their standards, written out here again so a
wrong row in the library fails a test."""

import math

import pytest
from _pytest.mark import ParameterSet

from fabcity.aqi import (
    MOLAR_VOLUME_20C_L,
    AirIndex,
    Band,
    BeyondIndex,
    InsufficientData,
    convert,
    eu_caqi,
    nowcast,
    us_epa,
    who_indicators,
)

EPA_CATEGORIES = [
    ("good", "Good", "#00E400", 0, 50),
    ("moderate", "Moderate", "#FFFF00", 51, 100),
    ("unhealthy_sensitive", "Unhealthy for Sensitive Groups", "#FF7E00", 101, 150),
    ("unhealthy", "Unhealthy", "#FF0000", 151, 200),
    ("very_unhealthy", "Very Unhealthy", "#8F3F97", 201, 300),
    ("hazardous", "Hazardous", "#7E0023", 301, 500),
]
# pollutant, truncation step, first category, (low, high) per category: the 2024 table.
EPA_TABLE: list[tuple[str, float, int, list[tuple[float, float]]]] = [
    ("pm2_5", 0.1, 0, [(0.0, 9.0), (9.1, 35.4), (35.5, 55.4), (55.5, 125.4), (125.5, 225.4),
                       (225.5, 325.4)]),
    ("pm10", 1, 0, [(0, 54), (55, 154), (155, 254), (255, 354), (355, 424), (425, 604)]),
    ("o3_8h", 0.001, 0, [(0.000, 0.054), (0.055, 0.070), (0.071, 0.085), (0.086, 0.105),
                         (0.106, 0.200)]),
    ("o3_1h", 0.001, 2, [(0.125, 0.164), (0.165, 0.204), (0.205, 0.404), (0.405, 0.604)]),
    ("co", 0.1, 0, [(0.0, 4.4), (4.5, 9.4), (9.5, 12.4), (12.5, 15.4), (15.5, 30.4),
                    (30.5, 50.4)]),
    ("no2", 1, 0, [(0, 53), (54, 100), (101, 360), (361, 649), (650, 1249), (1250, 2049)]),
]


def _epa_cases() -> list[ParameterSet]:
    cases = []
    for pollutant, step, first, rows in EPA_TABLE:
        for n, (low, high) in enumerate(rows, start=first):
            key, _, _, i_low, i_high = EPA_CATEGORIES[n]
            cases.append(pytest.param(pollutant, low, key, i_low, (low, high, i_low, i_high),
                                      id=f"{pollutant}-{key}-low"))
            cases.append(pytest.param(pollutant, high, key, i_high, (low, high, i_low, i_high),
                                      id=f"{pollutant}-{key}-high"))
            # Half a step above the top truncates back onto it: same band, same index.
            above = round(high + step / 2, 4)
            cases.append(pytest.param(pollutant, above, key, i_high, (low, high, i_low, i_high),
                                      id=f"{pollutant}-{key}-high-plus-half-step"))
    return cases


@pytest.mark.parametrize(("pollutant", "concentration", "category", "index", "band"),
                         _epa_cases())
def test_us_epa_every_band_edge_gives_the_tables_index(
        pollutant: str, concentration: float, category: str, index: int,
        band: tuple[float, float, int, int]) -> None:
    result = us_epa(pollutant, concentration)
    assert (result.category, result.index) == (category, index)
    assert result.band == Band(*band)
    labels = {key: (label, colour) for key, label, colour, _, _ in EPA_CATEGORIES}
    assert (result.label, result.colour) == labels[category]
    assert result.standard == "us-epa"


@pytest.mark.parametrize(("pollutant", "concentration", "truncated", "index"), [
    ("pm2_5", 9.09, 9.0, 50),      # PM2.5 to 0.1: not moderate
    ("pm2_5", 35.49, 35.4, 100),
    ("pm2_5", 12.29, 12.2, 57),    # 51 + 49/26.3 * 3.1 = 56.78 -> 57
    ("pm10", 154.99, 154, 100),    # PM10 to 1
    ("o3_8h", 0.0709, 0.070, 100),  # ozone to 0.001 ppm
    ("o3_8h", 0.0874125, 0.087, 154),  # 151 + 49 * 0.001 / 0.019 = 153.58 -> 154
    ("co", 4.49, 4.4, 50),         # CO to 0.1 ppm
    ("no2", 53.9, 53, 50),         # NO2 to 1 ppb
    ("pm2_5", 0.29, 0.2, 1),       # 0.29 is 0.28999… in binary: still truncates to 0.2
])
def test_us_epa_truncates_before_grading(pollutant: str, concentration: float,
                                         truncated: float, index: int) -> None:
    result = us_epa(pollutant, concentration)
    assert result.concentration == pytest.approx(truncated)
    assert result.index == index


def test_us_epa_interpolates_and_rounds_halves_up() -> None:
    # Ip = (Ihi - Ilo) * (C - BPlo) / (BPhi - BPlo) + Ilo, rounded to the nearest integer.
    assert us_epa("pm10", 100).index == 73     # 51 + 49 * 45 / 99 = 73.27
    assert us_epa("pm2_5", 45.0).index == 124  # 101 + 49 * 9.5 / 19.9 = 124.39
    assert us_epa("co", 7.0).index == 76       # 51 + 49 * 2.5 / 4.9 = 76 exactly
    assert us_epa("pm10", 65).index == 56      # 51 + 49 * 10 / 99 = 55.95
    # Halves go up, not to the even neighbour: CO 1.1 ppm is 50 * 1.1 / 4.4 = 12.5 -> 13
    # (Python's round() would say 12, and float arithmetic gives 12.4999…).
    assert us_epa("co", 1.1).index == 13
    assert us_epa("no2", 77).index == 76       # 51 + 49 * 23 / 46 = 75.5 -> 76


@pytest.mark.parametrize(("pollutant", "concentration"), [
    ("pm2_5", 325.5), ("pm10", 605), ("co", 50.5), ("no2", 2050), ("o3_1h", 0.605)])
def test_us_epa_above_the_top_is_beyond_the_index(pollutant: str, concentration: float) -> None:
    with pytest.raises(BeyondIndex, match="beyond the AQI") as caught:
        us_epa(pollutant, concentration)
    assert (caught.value.category, caught.value.colour) == ("hazardous", "#7E0023")


def test_us_epa_ozone_hands_over_between_8_hour_and_1_hour() -> None:
    with pytest.raises(ValueError, match="1-hour value"):
        us_epa("o3_8h", 0.201)
    with pytest.raises(ValueError, match="8-hour value"):
        us_epa("o3_1h", 0.124)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, True])
def test_us_epa_refuses_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="pm2_5 concentration"):
        us_epa("pm2_5", bad)


def test_us_epa_refuses_an_unknown_pollutant() -> None:
    with pytest.raises(ValueError, match="unknown pollutant 'so2'"):
        us_epa("so2", 10)


# -- NowCast ------------------------------------------------------------------------------

def test_nowcast_weighs_recent_hours_more_when_air_changes() -> None:
    # Oldest first 10, 20, 40: min/max = 0.25, raised to 0.5.
    # (40 + 0.5*20 + 0.25*10) / (1 + 0.5 + 0.25) = 52.5 / 1.75 = 30.0
    assert nowcast([10, 20, 40]) == pytest.approx(30.0)


def test_nowcast_of_steady_air_uses_the_ratio_as_weight() -> None:
    # Oldest first 16, 20: w = 16/20 = 0.8 (above 0.5): (20 + 0.8*16) / 1.8 = 18.222…
    assert nowcast([16, 20]) == pytest.approx(32.8 / 1.8)


def test_nowcast_skips_a_missing_hour_but_keeps_its_place() -> None:
    # Oldest first 20, missing, 30: w = 20/30; the 20 is two hours back: weight w².
    # (30 + 4/9*20) / (1 + 4/9) = (270 + 80) / 13 = 26.923…
    assert nowcast([20, None, 30]) == pytest.approx(350 / 13)


def test_nowcast_uses_only_the_last_12_hours() -> None:
    # A 13th hour back (1000) is ignored; twelve equal hours give their value.
    assert nowcast([1000] + [12.0] * 12) == pytest.approx(12.0)


def test_nowcast_of_twelve_rising_hours_worked_by_hand() -> None:
    # Oldest first 5 … 16: w = 5/16 -> 0.5. The hour k back holds 16 - k and weighs 0.5**k.
    # Σ 0.5**k (k = 0..11) = 2 - 2**-11 = 1.99951171875
    # Σ k * 0.5**k (k = 0..11) = 2 - 13 / 2**11 = 1.99365234375
    # numerator = 16 * 1.99951171875 - 1.99365234375 = 29.99853515625
    # NowCast = 29.99853515625 / 1.99951171875 = 15.0029… ug/m3 (the 12-hour mean is 10.5)
    assert nowcast(list(range(5, 17))) == pytest.approx(29.99853515625 / 1.99951171875)
    assert us_epa("pm2_5", nowcast(list(range(5, 17)))).index == 62  # 51 + 49 * 5.9 / 26.3


@pytest.mark.parametrize("level", [9.1, 35.5, 0.3, 12.2])
def test_nowcast_of_steady_air_is_graded_as_that_level(level: float) -> None:
    # The weighted mean of twelve 9.1s is 9.0999…98 in binary: it must not truncate to 9.0.
    assert us_epa("pm2_5", nowcast([level] * 12)).concentration == level


@pytest.mark.parametrize("hours", [[10, None, None], [None, None, 10], [10], []])
def test_nowcast_needs_two_of_the_three_latest_hours(hours: list[float | None]) -> None:
    with pytest.raises(InsufficientData):
        nowcast(hours)


def test_nowcast_of_clean_air_is_zero() -> None:
    assert nowcast([0, 0, 0]) == 0.0


def test_nowcast_refuses_a_negative_hour() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        nowcast([1, -1, 2])


# -- CAQI ---------------------------------------------------------------------------------

CAQI_CATEGORIES = [("very_low", "Very low", "#79BC6A"), ("low", "Low", "#BBCF4C"),
                   ("medium", "Medium", "#EEC20B"), ("high", "High", "#F29305"),
                   ("very_high", "Very high", "#960018")]
CAQI_GRIDS = {
    "hourly": {"no2": [0, 50, 100, 200, 400], "pm10": [0, 25, 50, 90, 180],
               "pm2_5": [0, 15, 30, 55, 110], "o3": [0, 60, 120, 180, 240],
               "co": [0, 5000, 7500, 10000, 20000], "so2": [0, 50, 100, 350, 500]},
    "daily": {"no2": [0, 50, 100, 200, 400], "pm10": [0, 15, 30, 50, 100],
              "pm2_5": [0, 10, 20, 30, 60], "o3": [0, 60, 120, 180, 240],
              "co": [0, 5000, 7500, 10000, 20000], "so2": [0, 50, 100, 350, 500]},
}


def _caqi_cases() -> list[ParameterSet]:
    cases = []
    for period, grids in CAQI_GRIDS.items():
        for pollutant, grid in grids.items():
            for n in range(4):
                low, high = grid[n], grid[n + 1]
                key = CAQI_CATEGORIES[n][0]
                ident = f"{period}-{pollutant}-{key}"
                if n == 0:
                    cases.append(pytest.param(period, pollutant, 0, key, 0, id=f"{ident}-zero"))
                cases.append(pytest.param(period, pollutant, high, key, 25 * (n + 1),
                                          id=f"{ident}-top"))
                # Just above a breakpoint: the next class, the same rounded index.
                above = high + (high - low) / 1000
                cases.append(pytest.param(period, pollutant, above, CAQI_CATEGORIES[n + 1][0],
                                          25 * (n + 1), id=f"{ident}-just-above-top"))
                cases.append(pytest.param(period, pollutant, (low + high) / 2, key,
                                          25 * n + 13, id=f"{ident}-middle"))  # 12.5 -> 13
    return cases


@pytest.mark.parametrize(("period", "pollutant", "concentration", "category", "index"),
                         _caqi_cases())
def test_caqi_grids_give_the_class_and_index_of_the_grid(
        period: str, pollutant: str, concentration: float, category: str, index: int) -> None:
    result = eu_caqi(pollutant, concentration, period)  # type: ignore[arg-type]
    assert (result.category, result.index) == (category, index)
    assert (result.label, result.colour) == {k: (lbl, c) for k, lbl, c in CAQI_CATEGORIES}[
        category]
    assert result.unit == "ug/m3"


def test_caqi_very_high_is_open_ended_and_continues_the_high_slope() -> None:
    # Hourly PM10: high band 90-180 for 75-100; 270 is 90 more: 100 + 25 = 125.
    result = eu_caqi("pm10", 270)
    assert (result.category, result.index) == ("very_high", 125)
    assert result.band == Band(180, None, 100, None)


def test_caqi_daily_and_hourly_grids_differ_for_particles() -> None:
    daily = eu_caqi("pm10", 50, "daily")  # daily grid: 30-50 ug/m3 is index 50-75
    assert (daily.category, daily.index) == ("medium", 75)
    assert eu_caqi("pm10", 50, "hourly").index == 50


@pytest.mark.parametrize(("args", "message"), [
    (("pm2_5", -1), "must not be negative"), (("benzene", 1), "unknown pollutant"),
    (("pm10", 1, "weekly"), "unknown period"), (("pm10", math.nan), "finite")])
def test_caqi_refuses_bad_input(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eu_caqi(*args)  # type: ignore[arg-type]


def test_index_results_are_frozen() -> None:
    result: AirIndex = eu_caqi("no2", 10)
    with pytest.raises(AttributeError):
        result.index = 3  # type: ignore[misc]


# -- WHO ----------------------------------------------------------------------------------

def test_who_pm2_5_counts_days_above_15_and_compares_the_year_with_5() -> None:
    found = who_indicators("pm2_5", [4.0, 15.0, 15.1, 30.0])
    assert found.days_with_data == 4
    assert found.days_above_daily == 2  # 15.0 is at the guideline, not above
    assert found.annual_mean == pytest.approx(16.025)
    assert (found.annual_guideline, found.daily_guideline) == (5.0, 15.0)
    assert found.annual_above is True


@pytest.mark.parametrize(("pollutant", "annual", "daily"), [
    ("pm2_5", 5.0, 15.0), ("pm10", 15.0, 45.0), ("no2", 10.0, 25.0)])
def test_who_guideline_levels(pollutant: str, annual: float, daily: float) -> None:
    at = who_indicators(pollutant, [daily, daily + 0.01], annual_mean=annual)
    assert (at.annual_guideline, at.daily_guideline) == (annual, daily)
    assert at.annual_above is False  # at the guideline is not above it
    assert at.days_above_daily == 1


def test_who_without_data_says_nothing_about_the_year() -> None:
    found = who_indicators("pm10", [])
    assert (found.annual_mean, found.annual_above, found.days_with_data) == (None, None, 0)


def test_who_refuses_an_unknown_pollutant() -> None:
    with pytest.raises(ValueError, match="unknown pollutant 'o3'"):
        who_indicators("o3", [1.0])


# -- units --------------------------------------------------------------------------------

def test_convert_gases_between_mixing_ratio_and_mass() -> None:
    # NO2 at 25 degC: 46.0055 / 24.465 = 1.8805 ug/m3 per ppb.
    assert convert("no2", 10, "ppb", "ug/m3") == pytest.approx(18.805, abs=1e-3)
    assert convert("co", 1, "ppm", "ug/m3", MOLAR_VOLUME_20C_L) == pytest.approx(1164.4, 0.01)
    assert convert("o3", 70, "ppb", "ppm") == pytest.approx(0.070)
    assert convert("no2", convert("no2", 5, "ppb", "ug/m3"), "ug/m3", "ppb") \
        == pytest.approx(5)
    with pytest.raises(ValueError, match="units must be one of"):
        convert("no2", 1, "ppt", "ppb")
    with pytest.raises(ValueError, match="no molar mass"):
        convert("pm2_5", 1, "ppb", "ug/m3")
