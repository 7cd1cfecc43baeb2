"""openSenseMap: ``POST {url}/boxes/{box_id}/data`` with the box's access token.

The body is a JSON array of ``{"sensor": "<sensor id>", "value": "12.3", "createdAt":
"<RFC 3339>"}``; the service takes at most 2,500 values per request and answers 201. Every
reading keeps its own time, so a backlog (after an outage, or ``backfill_s``) is sent as it
was measured, oldest first, in batches of ``batch_max``.
"""

import json
import re

from pydantic import Field, field_validator

from fabcity.reading import Reading, format_ts
from hub.forward.base import Forwarder, ForwarderOptions
from hub.storage.base import SeriesKey

__all__ = ["BATCH_MAX", "OpenSenseMapForwarder", "OpenSenseMapOptions", "format_value"]

BATCH_MAX = 2_500  # the service's documented ceiling of values per request
_ID = r"^[0-9a-f]{24}$"  # openSenseMap ids (box and sensor) are MongoDB object ids
_SENSOR_KEY = re.compile(r"^([a-z0-9][a-z0-9_-]{0,63}/)?[a-z][a-z0-9_]{0,63}/[a-z][a-z0-9_]{0,63}$")


def format_value(value: float) -> str:
    """Up to four decimals without trailing zeros: ``12.3``, ``1013.25``, ``0``."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class OpenSenseMapOptions(ForwarderOptions):
    """``[[forward]] to = "opensensemap"``."""

    url: str = Field("https://api.opensensemap.org", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    box_id: str = Field(pattern=_ID, description="the senseBox id")
    token: str = Field(min_length=1, max_length=200, repr=False,
                       description="the box's access token (Authorization header)")
    sensors: dict[str, str] = Field(
        min_length=1, description='"sensor/metric" (or "device/sensor/metric") -> sensor id')
    batch_max: int = Field(BATCH_MAX, ge=1, le=BATCH_MAX, description="values per request")

    @field_validator("sensors")
    @classmethod
    def _mapping(cls, sensors: dict[str, str]) -> dict[str, str]:
        for key, sensor_id in sensors.items():
            if not _SENSOR_KEY.match(key):
                raise ValueError(f"{key!r} must be \"sensor/metric\" or \"device/sensor/metric\"")
            if not re.match(_ID, sensor_id):
                raise ValueError(f"{key}: {sensor_id!r} is not an openSenseMap sensor id "
                                 "(24 hex digits)")
        return sensors


class OpenSenseMapForwarder(Forwarder):
    """Every mapped reading with its own timestamp, oldest first."""

    Options = OpenSenseMapOptions
    options: OpenSenseMapOptions

    def default_name(self) -> str:
        return f"opensensemap-{self.options.box_id}"

    def sensor_id(self, key: SeriesKey) -> str | None:
        """The box's sensor for a series: ``device/sensor/metric`` first, then
        ``sensor/metric``."""
        _site, device, sensor, metric = key
        mapping = self.options.sensors
        return mapping.get(f"{device}/{sensor}/{metric}") or mapping.get(f"{sensor}/{metric}")

    def wants(self, key: SeriesKey, unit: str | None) -> bool:
        return self.sensor_id(key) is not None

    def forward_pending(self, series: list[SeriesKey], end_ms: int, now: int) -> None:
        while self._next_batch(series, end_ms):
            pass

    def _next_batch(self, series: list[SeriesKey], end_ms: int) -> bool:
        """Send the oldest ``batch_max`` pending readings; False when none are left.

        Each series' readings in a batch are a prefix of what it has pending (a merge by
        time, cut at ``batch_max``), so its cursor can move to its last one.
        """
        limit = self.options.batch_max
        fetched: list[Reading] = []
        for key in series:
            fetched.extend(self.pending(key, self.start_of(key), end_ms, limit))
        if not fetched:
            return False
        fetched.sort(key=lambda r: (r.ts_ms, r[:4]))
        batch = fetched[:limit]
        done: dict[SeriesKey, int] = {}
        for reading in batch:
            done[reading[:4]] = reading.ts_ms
        kept = self.sendable(batch)
        self.skip(len(batch) - len(kept), "flagged")
        if kept:
            body = json.dumps([{"sensor": self.sensor_id(r[:4]), "value": format_value(r.value),
                                "createdAt": format_ts(r.ts_ms)} for r in kept]).encode()
            url = f"{self.options.url.rstrip('/')}/boxes/{self.options.box_id}/data"
            self.deliver(url, body, {"Authorization": self.options.token}, len(kept))
        self.commit(done)
        return True
