"""Settings of an edge agent (``edge.toml`` plus ``FABCITY_…`` environment overrides)."""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fabcity.config import FileSettings, load_settings
from fabcity.device import Location
from fabcity.mqtt import BROKER_URL_PATTERN, BrokerConfig
from fabcity.names import SensorName, SiteName

__all__ = [
    "BufferConfig",
    "EdgeSettings",
    "HomeAssistantConfig",
    "MqttConfig",
    "PublishConfig",
    "QualityConfig",
    "SensorConfig",
    "load_edge_settings",
]

class MqttConfig(BrokerConfig):
    """The broker: ``mqtt://`` or ``mqtts://`` (TLS) URL and credentials."""

    url: str = Field("mqtt://127.0.0.1:1883", pattern=BROKER_URL_PATTERN)
    client_id: str | None = None


class BufferConfig(BaseModel):
    """The durable store-and-forward buffer."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Path("edge-buffer.db")
    max_readings: int = Field(1_000_000, ge=100)
    synchronous: Literal["full", "normal"] = "full"
    #: Readings not yet acknowledged after this long are written to the SD card; a power cut
    #: may lose at most this much. ``0``: every batch is written and synced at once.
    commit_interval_s: float = Field(1.0, ge=0, le=3600)
    #: Where readings wait before that (RAM: tmpfs); ``None``: ``/dev/shm``.
    spool_dir: Path | None = None


class PublishConfig(BaseModel):
    """How readings leave the buffer: batch size, linger, in-flight window."""

    model_config = ConfigDict(extra="forbid")

    # 1,000 readings with the longest names and units encode to ~250 KB: every batch stays
    # under the hub's 256 KiB limit (MAX_PAYLOAD_BYTES), which refuses a whole message.
    batch_size: int = Field(50, ge=1, le=1000)
    linger_s: float = Field(0.2, ge=0, le=60)
    max_inflight: int = Field(100, ge=1, le=65535)
    #: Keep each reading until the hub confirms it stored it (the ``ack`` topic), not only
    #: until the broker's PUBACK: a broker crash then loses nothing. Needs a hub that confirms.
    confirm: bool = True
    #: Seconds to wait for the hub's confirmation before sending a batch again.
    confirm_timeout_s: float = Field(30.0, ge=0.1, le=3600)
    #: Readings sent but not yet confirmed, at most: past this the agent waits for the hub.
    max_unconfirmed: int = Field(20_000, ge=1, le=1_000_000)


class SensorConfig(BaseModel):
    """One ``[[sensors]]`` entry; keys beyond the common ones are the driver's options."""

    model_config = ConfigDict(extra="allow")

    driver: str
    name: SensorName
    interval_s: float = Field(5.0, gt=0, le=86_400)
    port: str | None = None
    pin: int | str | None = None
    #: Data quality (validated by ``edge.quality``, so errors name the sensor): per metric
    #: ``{scale, offset}`` or ``{points = [[raw, true], [raw, true]]}``.
    calibration: dict[str, Any] = {}
    #: Per metric ``[low, high]``, overriding the catalogue's plausible range.
    plausible: dict[str, Any] = {}
    #: What happens to a reading outside its plausible range: ``flag`` or ``reject``.
    out_of_range: str = "flag"

    @property
    def options(self) -> dict[str, Any]:
        """The driver-specific keys of this entry."""
        return dict(self.model_extra or {})


class QualityConfig(BaseModel):
    """Device-wide data-quality rules."""

    model_config = ConfigDict(extra="forbid")

    #: Particulates are flagged ``suspect_humidity`` above this relative humidity.
    humidity_limit_pct: float = Field(70.0, ge=0, le=100)
    #: A humidity reading older than this no longer counts.
    humidity_max_age_s: float = Field(900.0, gt=0)


class HomeAssistantConfig(BaseModel):
    """Home Assistant MQTT discovery."""

    model_config = ConfigDict(extra="forbid")

    discovery: bool = False
    prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]+$")


class EdgeSettings(FileSettings):
    """Everything an edge agent needs to run."""

    site: SiteName
    device: SiteName
    kind: Literal["environment", "machine", "mixed"] = "environment"
    name: str | None = None
    location: Location | None = None
    mqtt: MqttConfig = MqttConfig()
    buffer: BufferConfig = BufferConfig()
    publish: PublishConfig = PublishConfig()
    quality: QualityConfig = QualityConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    sensors: list[SensorConfig] = []

    @model_validator(mode="after")
    def _unique_sensor_names(self) -> "EdgeSettings":
        seen: set[str] = set()
        for sensor in self.sensors:
            if sensor.name in seen:
                raise ValueError(f"two sensors are named {sensor.name!r}: names must be unique")
            seen.add(sensor.name)
        return self


def load_edge_settings(path: Path | None) -> EdgeSettings:
    """Load and validate ``edge.toml``; errors name the field and the rule."""
    return load_settings(EdgeSettings, path)
