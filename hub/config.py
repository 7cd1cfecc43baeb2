"""Settings of the hub (``hub.toml`` plus ``FABCITY_…`` environment overrides)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fabcity.codec import MAX_AGE_S, MAX_FUTURE_S
from fabcity.config import FileSettings, load_settings

__all__ = [
    "ApiConfig",
    "HubMqttConfig",
    "HubSettings",
    "IngestConfig",
    "StorageConfig",
    "load_hub_settings",
]


class HubMqttConfig(BaseModel):
    """The broker; no ``url`` means the hub starts the embedded broker itself."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, pattern=r"^mqtts?://[^/\s]+$")
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    client_id: str = Field("fabcity-hub", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    protocol: Literal["auto", "v5", "v311"] = "auto"
    shared_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    keepalive_s: int = Field(30, ge=5, le=3600)
    embedded_port: int = Field(0, ge=0, le=65535, description="0: any free port")


class StorageConfig(BaseModel):
    """Where readings go. Back-end specific keys (url, token, …) are allowed."""

    model_config = ConfigDict(extra="allow")

    backend: str = "sqlite"
    path: Path = Path("fabcity-hub.db")
    synchronous: Literal["full", "normal"] = "full"

    @property
    def options(self) -> dict[str, object]:
        """Keyword arguments for the back-end's constructor."""
        if self.backend == "sqlite":
            return {"path": self.path, "synchronous": self.synchronous}
        return dict(self.model_extra or {})


class ApiConfig(BaseModel):
    """The HTTP server."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)


class IngestConfig(BaseModel):
    """How the hub batches writes and which timestamps it accepts."""

    model_config = ConfigDict(extra="forbid")

    batch_max_readings: int = Field(20_000, ge=1, le=100_000)
    flush_interval_s: float = Field(0.05, gt=0, le=10)
    receive_maximum: int = Field(20_000, ge=20, le=65_535)
    max_future_s: float = Field(MAX_FUTURE_S, gt=0)
    max_age_s: float = Field(MAX_AGE_S, gt=0)


class HubSettings(FileSettings):
    """Everything a hub needs to run."""

    mqtt: HubMqttConfig = HubMqttConfig()
    storage: StorageConfig = StorageConfig()
    api: ApiConfig = ApiConfig()
    ingest: IngestConfig = IngestConfig()
    registry_path: Path | None = Field(
        None, description="device registry file; default: beside the SQLite storage file"
    )

    def resolved_registry_path(self) -> Path:
        """Where the device registry lives."""
        if self.registry_path is not None:
            return self.registry_path
        base = self.storage.path if self.storage.backend == "sqlite" else Path("fabcity-hub.db")
        return base.with_name(base.stem + "-registry.db")


def load_hub_settings(
    path: Path | None, cli: Mapping[str, tuple[str, Any]] | None = None
) -> HubSettings:
    """Load and validate ``hub.toml`` (and command-line overrides); errors name the field
    and the rule."""
    return load_settings(HubSettings, path, cli)
