"""Home Assistant MQTT discovery: every sensor metric appears in Home Assistant unconfigured.

For each (sensor, metric) the agent publishes a retained config on
``<prefix>/<sensor|binary_sensor>/fabcity_<site>_<device>/<sensor>_<metric>/config``. The
entity reads the device's ordinary ``readings`` topic (wire contract v1, nothing extra is
published) with a template that picks its own value out of each batch and keeps its state
when a batch does not carry it; availability follows the retained ``status`` topic.
"""

import json
from collections.abc import Mapping
from typing import Any

from edge.config import EdgeSettings
from fabcity import __version__
from fabcity.catalogue import lookup
from fabcity.topic import Kind, Topic

__all__ = ["DISCOVERY_QOS", "discovery_messages", "entity_config"]

DISCOVERY_QOS = 1

# metric -> (device_class, state_class) for numeric sensors
_SENSOR_CLASSES: dict[str, tuple[str | None, str]] = {
    "temperature": ("temperature", "measurement"),
    "humidity": ("humidity", "measurement"),
    "pressure": ("atmospheric_pressure", "measurement"),
    "pm1": ("pm1", "measurement"),
    "pm2_5": ("pm25", "measurement"),
    "pm10": ("pm10", "measurement"),
    "co2": ("carbon_dioxide", "measurement"),
    "noise": ("sound_pressure", "measurement"),
    "light": ("illuminance", "measurement"),
    "voltage": ("voltage", "measurement"),
    "current": ("current", "measurement"),
    "power": ("power", "measurement"),
    "energy": ("energy", "total_increasing"),
}
# binary metric -> device_class
_BINARY_CLASSES: dict[str, str | None] = {
    "door_open": "door", "motion": "motion", "state": "running", "button": None,
}
# wire units (ASCII) -> the symbols Home Assistant expects
_HA_UNITS = {"degC": "°C", "ug/m3": "µg/m³"}


def _is_binary(metric: str) -> bool:
    known = lookup(metric)
    return metric in _BINARY_CLASSES or (known is not None and known.kind == "binary")


def _template(sensor: str, metric: str, binary: bool) -> str:
    pick = (f"{{% set r = value_json.readings | selectattr('sensor', 'eq', '{sensor}') "
            f"| selectattr('metric', 'eq', '{metric}') | list %}}")
    value = "('on' if r[-1].value > 0.5 else 'off')" if binary else "r[-1].value"
    return pick + f"{{{{ {value} if r else this.state }}}}"


def entity_config(settings: EdgeSettings, sensor: str, metric: str, unit: str
                  ) -> tuple[str, dict[str, Any]]:
    """The discovery topic and config of one metric of one sensor."""
    node = f"fabcity_{settings.site}_{settings.device}"
    binary = _is_binary(metric)
    component = "binary_sensor" if binary else "sensor"
    config: dict[str, Any] = {
        "name": f"{sensor} {metric}".replace("_", " "),
        "unique_id": f"{node}_{sensor}_{metric}",
        "object_id": f"{node}_{sensor}_{metric}",
        "state_topic": str(Topic(settings.site, settings.device, Kind.READINGS)),
        "value_template": _template(sensor, metric, binary),
        "availability_topic": str(Topic(settings.site, settings.device, Kind.STATUS)),
        "availability_template": "{{ value_json.state }}",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [node],
            "name": settings.name or f"{settings.site} {settings.device}",
            "manufacturer": "fabcity",
            "model": f"edge agent ({settings.kind})",
            "sw_version": __version__,
        },
        "origin": {"name": "fabcity", "sw_version": __version__},
    }
    if binary:
        config |= {"payload_on": "on", "payload_off": "off"}
        device_class = _BINARY_CLASSES.get(metric)
    else:
        device_class, state_class = _SENSOR_CLASSES.get(metric, (None, "measurement"))
        config |= {"unit_of_measurement": _HA_UNITS.get(unit, unit), "state_class": state_class}
    if device_class is not None:
        config["device_class"] = device_class
    topic = f"{settings.homeassistant.prefix}/{component}/{node}/{sensor}_{metric}/config"
    return topic, config


def discovery_messages(settings: EdgeSettings, metrics: Mapping[str, Mapping[str, str]]
                       ) -> list[tuple[str, bytes]]:
    """Retained discovery messages for ``metrics`` (sensor name -> metric -> unit)."""
    messages = []
    for sensor, units in metrics.items():
        for metric, unit in units.items():
            topic, config = entity_config(settings, sensor, metric, unit)
            messages.append((topic, json.dumps(config, ensure_ascii=False).encode()))
    return messages
