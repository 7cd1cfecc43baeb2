"""Calibration, plausible ranges and humidity-suspect particulates."""

import pytest

from edge.config import QualityConfig, SensorConfig
from edge.quality import DeviceQuality, SensorQuality
from fabcity.errors import ConfigError
from fabcity.reading import Reading

T0_MS = 1_790_000_000_000


def reading(sensor: str, metric: str, value: float, ts_ms: int = T0_MS) -> Reading:
    return Reading("lab", "pi1", sensor, metric, value, ts_ms)


def quality(device: DeviceQuality | None = None, name: str = "dust",
            **rules: object) -> SensorQuality:
    config = SensorConfig(driver="sds011", name=name, **rules)
    return SensorQuality(config, device or DeviceQuality())


def test_offset_and_scale() -> None:
    q = quality(calibration={"pm2_5": {"scale": 0.8, "offset": 1.5}})
    (out,) = q([reading("dust", "pm2_5", 10.0)])
    assert out.value == pytest.approx(9.5)


def test_two_point_calibration_maps_both_points_exactly() -> None:
    # a thermometer reading 0.4 in ice water and 99.2 in boiling water
    q = quality(calibration={"temperature": {"points": [[0.4, 0.0], [99.2, 100.0]]}})
    ice, boil, room = q([reading("dust", "temperature", v) for v in (0.4, 99.2, 20.16)])
    assert ice.value == pytest.approx(0.0)
    assert boil.value == pytest.approx(100.0)
    assert room.value == pytest.approx(20.0)


def test_uncalibrated_metrics_pass_unchanged() -> None:
    q = quality(calibration={"pm10": {"scale": 2}})
    original = reading("dust", "pm2_5", 12.0)
    assert q([original]) == [original]


def test_out_of_range_is_flagged_by_default_using_the_catalogue() -> None:
    q = quality()
    (out,) = q([reading("dust", "pm2_5", 1500.0)])  # catalogue: pm2_5 within 0..1000
    assert out.flags == ("out_of_range",)
    assert q.flagged == 1


def test_out_of_range_can_be_rejected_with_a_configured_range() -> None:
    q = quality(plausible={"pm2_5": [0, 300]}, out_of_range="reject")
    kept = q([reading("dust", "pm2_5", 301.0), reading("dust", "pm10", 301.0)])
    assert [r.metric for r in kept] == ["pm10"]
    assert q.rejected == 1


def test_range_applies_after_calibration() -> None:
    q = quality(calibration={"pm2_5": {"offset": -5}}, out_of_range="reject")
    assert q([reading("dust", "pm2_5", 3.0)]) == []  # -2 ug/m3 is impossible


def test_particulates_flagged_above_70_percent_humidity_on_the_same_device() -> None:
    device = DeviceQuality(QualityConfig())
    dust = quality(device)
    climate = quality(device, name="climate")
    assert dust([reading("dust", "pm2_5", 10.0)])[0].flags == ()  # no humidity seen yet
    climate([reading("climate", "humidity", 71.0)])
    pm, temp = dust([reading("dust", "pm2_5", 10.0, T0_MS + 1000),
                     reading("dust", "temperature", 20.0, T0_MS + 1000)])
    assert pm.flags == ("suspect_humidity",)
    assert temp.flags == ()
    climate([reading("climate", "humidity", 70.0, T0_MS + 2000)])
    assert dust([reading("dust", "pm10", 10.0, T0_MS + 3000)])[0].flags == ()


def test_humidity_in_the_same_batch_counts_and_stale_humidity_does_not() -> None:
    device = DeviceQuality(QualityConfig(humidity_max_age_s=60))
    combo = quality(device, name="env")
    pm, _ = combo([reading("env", "pm2_5", 8.0), reading("env", "humidity", 85.0)])
    assert pm.flags == ("suspect_humidity",)
    later = combo([reading("env", "pm2_5", 8.0, T0_MS + 61_000)])
    assert later[0].flags == ()


def test_bad_rules_name_the_sensor_and_field() -> None:
    with pytest.raises(ConfigError, match=r"sensor 'dust' \(sds011\): calibration\.pm2_5"):
        quality(calibration={"pm2_5": {"points": [[1, 0], [1, 5]]}})
    with pytest.raises(ConfigError, match=r"sensor 'dust' \(sds011\): out_of_range"):
        quality(out_of_range="drop")
    with pytest.raises(ConfigError, match=r"sensor 'dust' \(sds011\).*plausible\.pm2_5"):
        quality(plausible={"pm2_5": [10, 5]})
