"""The climate keys of [[sites]]: errors name the key and the rule."""

import pytest
from pydantic import ValidationError

from hub.config import SiteConfig


@pytest.mark.parametrize(("key", "value", "words"), [
    ("gpc_sector", "I.7", "I.1, I.2"),
    ("grid_kgco2e_per_kwh", {"last year": 0.2}, "must be a year"),
    ("grid_kgco2e_per_kwh", 12.0, "outside 0 to 5"),
    ("grid_loss_factor", 1.5, "less than 1"),
    ("electricity_meters", ["Main Meter"], "device or device/sensor"),
    ("max_gap_s", 0, "greater than 0"),
])
def test_bad_climate_key_is_named(key: str, value: object, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SiteConfig.model_validate({"id": "lab", "name": "Lab", key: value})
    text = str(caught.value)
    assert key in text and words in text


def test_grid_factor_by_year_and_machine_lookup() -> None:
    site = SiteConfig.model_validate({
        "id": "lab", "name": "Lab", "grid_kgco2e_per_kwh": {"2025": 0.26, "2026": 0.25},
        "machines": [{"device": "pi-laser", "running_w": 50},
                     {"device": "pi-laser", "sensor": "fan", "running_w": 5}]})
    assert (site.grid_factor(2025), site.grid_factor(2026), site.grid_factor(2027)) == (
        0.26, 0.25, None)
    assert site.machine("pi-laser", "fan").running_w == 5  # type: ignore[union-attr]
    assert site.machine("pi-laser", "tube").running_w == 50  # type: ignore[union-attr]
    assert site.machine("pi-cnc", "spindle") is None
