"""Name rules shared by topics and readings.

The charsets are deliberately narrow: they keep topics predictable and make injection into
MQTT topics, InfluxDB line protocol or SQL identifiers impossible by construction.
"""

import re
from typing import Annotated

from pydantic import Field

from fabcity.errors import BadReading

__all__ = [
    "METRIC_RE",
    "SENSOR_PATTERN",
    "SENSOR_RE",
    "SITE_PATTERN",
    "SITE_RE",
    "SensorName",
    "SiteName",
    "check_device",
    "check_metric",
    "check_sensor",
    "check_site",
]

SITE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SENSOR_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
METRIC_RE = SENSOR_RE
SITE_PATTERN = f"^{SITE_RE.pattern}$"  # sites and devices, for pydantic fields and queries
SENSOR_PATTERN = f"^{SENSOR_RE.pattern}$"  # sensors and metrics

#: A site or device name in a configuration or message model.
SiteName = Annotated[str, Field(pattern=SITE_PATTERN)]
#: A sensor or metric name in a configuration or message model.
SensorName = Annotated[str, Field(pattern=SENSOR_PATTERN)]


def _check(kind: str, value: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise BadReading(
            "bad_name", f"invalid {kind} {value!r}: must match {pattern.pattern}"
        )
    return value


def check_site(value: object) -> str:
    """Return ``value`` if it is a valid site name, else raise :class:`BadReading`."""
    return _check("site", value, SITE_RE)


def check_device(value: object) -> str:
    """Return ``value`` if it is a valid device name, else raise :class:`BadReading`."""
    return _check("device", value, SITE_RE)


def check_sensor(value: object) -> str:
    """Return ``value`` if it is a valid sensor name, else raise :class:`BadReading`."""
    return _check("sensor", value, SENSOR_RE)


def check_metric(value: object) -> str:
    """Return ``value`` if it is a valid metric name, else raise :class:`BadReading`."""
    return _check("metric", value, METRIC_RE)
