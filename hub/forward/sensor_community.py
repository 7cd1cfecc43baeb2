"""Sensor.Community (formerly luftdaten.info): the push API its own airRohr nodes use.

One POST to ``{url}/v1/push-sensor-data/`` per sensor type and send interval, the node in
``X-Sensor``, the sensor type in ``X-Pin``, a JSON body ``{"software_version": …,
"sensordatavalues": [{"value_type": "P1", "value": "12.30"}, …]}`` with every value a string
with two decimals. The service has no timestamp field: it dates a sample when it arrives. So
the forwarder sends, like an airRohr node, the mean of each finished interval (default 145 s)
right after it ends, and skips intervals that ended more than ``max_delay_s`` ago instead of
placing old values at the wrong time on the map.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from pydantic import Field

from fabcity import __version__
from hub.forward.base import Forwarder, ForwarderOptions
from hub.storage.base import SeriesKey

__all__ = ["PINS", "VALUE_TYPES", "SensorCommunityForwarder", "SensorCommunityOptions"]

log = logging.getLogger(__name__)

PUSH_PATH = "/v1/push-sensor-data/"
WINDOW_READINGS_MAX = 100_000  # per series and interval: far above any real sampling rate


@dataclass(frozen=True, slots=True)
class ValueType:
    """How one fabcity metric becomes one Sensor.Community value."""

    name: str  # the value_type
    unit: str  # the fabcity unit it is taken in
    scale: float  # value sent = fabcity value * scale
    kind: str  # which family of sensor types (X-Pin) reports it


#: fabcity metric -> Sensor.Community value type. Only these metrics are sent.
VALUE_TYPES: dict[str, ValueType] = {
    "pm10": ValueType("P1", "ug/m3", 1.0, "particulates"),
    "pm2_5": ValueType("P2", "ug/m3", 1.0, "particulates"),
    "pm1": ValueType("P0", "ug/m3", 1.0, "particulates"),
    "pm4": ValueType("P4", "ug/m3", 1.0, "particulates"),
    "temperature": ValueType("temperature", "degC", 1.0, "climate"),
    "humidity": ValueType("humidity", "%", 1.0, "climate"),
    "pressure": ValueType("pressure", "hPa", 100.0, "climate"),  # the API takes pascals
    "noise": ValueType("noise_LAeq", "dBA", 1.0, "noise"),
}

#: X-Pin -> (sensor types sending on it, the value types it carries).
PINS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("SDS011, PMS x003, HPM, SPS30, Next PM", ("P0", "P1", "P2", "P4")),
    3: ("BMP180, BMP280", ("temperature", "pressure")),
    7: ("DHT22, HTU21D, SHT3x", ("temperature", "humidity")),
    11: ("BME280", ("temperature", "humidity", "pressure")),
    13: ("DS18B20", ("temperature",)),
    15: ("DNMS (noise)", ("noise_LAeq",)),
}


def default_pin(kind: str, metrics: set[str]) -> int:
    """The X-Pin of a fabcity sensor from what it measures: particulates 1, noise 15; a
    climate sensor with pressure and humidity is a BME280 (11), with pressure only a BMP280
    (3), with humidity a DHT22-style sensor (7), with temperature only a DS18B20 (13)."""
    if kind == "particulates":
        return 1
    if kind == "noise":
        return 15
    if "pressure" in metrics:
        return 11 if "humidity" in metrics else 3
    return 7 if "humidity" in metrics else 13


def format_value(value: float) -> str:
    """Two decimals, as airRohr nodes send them; never ``-0.00``."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


class SensorCommunityOptions(ForwarderOptions):
    """``[[forward]] to = "sensor.community"``."""

    url: str = Field("https://api.sensor.community", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    interval_s: float = Field(145, ge=10, le=3600, description="one sample per interval")
    node_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$",
                         description="X-Sensor, e.g. raspi-000000001234")
    pins: dict[str, int] = Field({}, description="fabcity sensor name -> X-Pin, overriding "
                                                 "the guess from its metrics")
    sensors: list[str] | None = Field(None, description="only these fabcity sensors")
    max_delay_s: float = Field(900, ge=0, description="intervals that ended longer ago are "
                                                      "skipped (the API dates on arrival)")
    software_version: str = Field(f"fabcity-{__version__}", max_length=64)


class SensorCommunityForwarder(Forwarder):
    """Means of each finished interval, one request per sensor type."""

    Options = SensorCommunityOptions
    options: SensorCommunityOptions

    def default_name(self) -> str:
        return f"sensor.community-{self.options.node_id}"

    def wants(self, key: SeriesKey, unit: str | None) -> bool:
        value_type = VALUE_TYPES.get(key[3])
        chosen = self.options.sensors is None or key[2] in self.options.sensors
        return chosen and value_type is not None and unit == value_type.unit

    def groups(self, series: Sequence[SeriesKey]) -> dict[int, list[SeriesKey]]:
        """Series by X-Pin; one fabcity sensor per pin (the first by name), as a node has
        one sensor of each type."""
        metrics: dict[tuple[str, str, str, str], set[str]] = {}
        for site, device, sensor, metric in series:
            kind = VALUE_TYPES[metric].kind
            metrics.setdefault((site, device, sensor, kind), set()).add(metric)
        groups: dict[int, list[SeriesKey]] = {}
        owner: dict[int, tuple[str, str, str]] = {}
        for (site, device, sensor, kind), names in sorted(metrics.items()):
            pin = self.options.pins.get(sensor) or default_pin(kind, names)
            carried = PINS.get(pin, ("", ()))[1]
            if owner.setdefault(pin, (site, device, sensor)) != (site, device, sensor):
                log.warning("forward %s: X-Pin %d is taken by %s, %s/%s/%s is not sent",
                            self.name, pin, "/".join(owner[pin]), site, device, sensor)
                continue
            groups.setdefault(pin, []).extend(
                (site, device, sensor, m) for m in sorted(names)
                if not carried or VALUE_TYPES[m].name in carried)
        return groups

    def forward_pending(self, series: list[SeriesKey], end_ms: int, now: int) -> None:
        for pin, keys in sorted(self.groups(series).items()):
            while self._next_window(pin, keys, end_ms, now):
                pass

    def _next_window(self, pin: int, keys: list[SeriesKey], end_ms: int, now: int) -> bool:
        """Send the oldest finished interval with readings; False when there is none."""
        interval_ms = int(self.options.interval_s * 1000)
        firsts = [r.ts_ms for key in keys
                  for r in self.pending(key, self.start_of(key), end_ms, 1)]
        if not firsts:
            return False
        window_start = min(firsts) // interval_ms * interval_ms
        window_end = window_start + interval_ms
        if window_end > end_ms:
            return False
        values: list[dict[str, str]] = []
        readings = 0
        for key in sorted(keys, key=lambda k: list(VALUE_TYPES).index(k[3])):
            window = self.pending(key, max(window_start, self.start_of(key)), window_end,
                                  WINDOW_READINGS_MAX)
            kept = self.sendable(window)
            self.skip(len(window) - len(kept), "flagged")
            readings += len(kept)
            if kept:
                value_type = VALUE_TYPES[key[3]]
                mean = fmean(r.value for r in kept) * value_type.scale
                values.append({"value_type": value_type.name, "value": format_value(mean)})
        done = {key: window_end - 1 for key in keys}
        if values and now - window_end > self.options.max_delay_s * 1000:
            self.skip(readings, "stale")
        elif values:
            body = json.dumps({"software_version": self.options.software_version,
                               "sensordatavalues": values}).encode()
            headers = {"X-Sensor": self.options.node_id, "X-Pin": str(pin)}
            self.deliver(self.options.url.rstrip("/") + PUSH_PATH, body, headers, readings)
        self.commit(done)
        return True
