"""The metric catalogue: canonical units, aliases, unit rules."""

import pytest

from fabcity.catalogue import CATALOGUE, canonical_unit, lookup, normalise_unit
from fabcity.errors import BadReading
from fabcity.names import METRIC_RE


def test_catalogue_names_follow_the_metric_charset_and_units_are_ascii() -> None:
    assert {"temperature", "humidity", "pm2_5", "pm10", "co2", "noise", "power", "energy",
            "state"} <= CATALOGUE.keys()
    for name, metric in CATALOGUE.items():
        assert METRIC_RE.fullmatch(name)
        assert metric.unit.isascii()
        assert normalise_unit(metric.unit) == metric.unit  # canonical units are fixed points


@pytest.mark.parametrize(("written", "canonical"), [
    ("µg/m³", "ug/m3"), ("μg/m³", "ug/m3"), ("µg/m3", "ug/m3"), ("UG/M3", "ug/m3"),
    ("°C", "degC"), ("C", "degC"), ("celsius", "degC"), (" degC ", "degC"),
    ("dB(A)", "dBA"), ("lux", "lx"), ("%RH", "%"), ("percent", "%"), ("mbar", "hPa"),
    ("w", "W"), ("boolean", "bool"),
])
def test_aliases_normalise_to_the_canonical_ascii_unit(written: str, canonical: str) -> None:
    assert normalise_unit(written) == canonical


def test_catalogued_metric_takes_its_unit_or_an_alias() -> None:
    assert canonical_unit("pm2_5", "µg/m³") == "ug/m3"
    assert canonical_unit("temperature", "°C") == "degC"
    assert canonical_unit("temperature", None) == "degC"


def test_catalogued_metric_in_another_unit_is_a_mismatch_never_converted() -> None:
    with pytest.raises(BadReading, match="measured in 'degC'") as err:
        canonical_unit("temperature", "degF")
    assert err.value.reason == "unit_mismatch"
    with pytest.raises(BadReading) as err:
        canonical_unit("power", "kW")
    assert err.value.reason == "unit_mismatch"


def test_uncatalogued_metric_keeps_its_declared_unit() -> None:
    assert canonical_unit("wind_speed", "m/s") == "m/s"
    assert lookup("wind_speed") is None


def test_uncatalogued_metric_without_unit_is_refused() -> None:
    with pytest.raises(BadReading, match="needs a unit") as err:
        canonical_unit("wind_speed", None)
    assert err.value.reason == "bad_unit"


@pytest.mark.parametrize("unit", ["", "m s", "m,s", "a=b", "x\ny", "x" * 25, "€"])
def test_uncatalogued_units_outside_the_charset_are_refused(unit: str) -> None:
    with pytest.raises(BadReading) as err:
        canonical_unit("wind_speed", unit)
    assert err.value.reason == "bad_unit"


@pytest.mark.parametrize("unit", [5, ["W"], {"u": "W"}, True])
def test_non_string_units_are_refused(unit: object) -> None:
    with pytest.raises(BadReading) as err:
        canonical_unit("power", unit)  # type: ignore[arg-type]
    assert err.value.reason == "bad_unit"
