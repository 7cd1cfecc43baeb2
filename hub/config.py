"""Settings of the hub (``hub.toml`` plus ``FABCITY_…`` environment overrides)."""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fabcity.codec import MAX_AGE_S, MAX_FUTURE_S
from fabcity.config import FileSettings, env_overrides, format_validation_error, load_settings
from fabcity.errors import ConfigError
from fabcity.mqtt import BrokerConfig
from fabcity.names import SENSOR_PATTERN, SITE_PATTERN
from hub.forward.config import ForwardConfig

if TYPE_CHECKING:
    from hub.storage.base import StorageOptions

DEFAULT_LICENCE = "CC-BY-4.0"
DEFAULT_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_TILES_ATTRIBUTION = "© OpenStreetMap contributors"
#: A tile URL template: scheme, a host (``{s}`` allowed for subdomains), a path with z, x, y.
TILES_RE = re.compile(
    r"^https?://(\{s\}\.)?[A-Za-z0-9.-]+(:\d{1,5})?/(?=.*\{z\})(?=.*\{x\})(?=.*\{y\})"
    r"[A-Za-z0-9._~/{}@?&=%-]*$")

__all__ = [
    "DEFAULT_LICENCE",
    "GPC_SECTORS",
    "ApiConfig",
    "BrokerFilesConfig",
    "HubMqttConfig",
    "HubSettings",
    "IngestConfig",
    "MachineConfig",
    "OpenDataConfig",
    "SiteConfig",
    "StorageConfig",
    "check_storage_options",
    "load_hub_settings",
]


class HubMqttConfig(BrokerConfig):
    """The broker; no ``url`` means the hub starts the embedded broker itself."""

    client_id: str = Field("fabcity-hub", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    protocol: Literal["auto", "v5", "v311"] = "auto"
    shared_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    embedded_port: int | None = Field(
        None, ge=0, le=65535,
        description="port of the embedded broker; none: 1883 when free, else any free port; "
                    "0: any free port")
    probe: bool | None = Field(
        None, description="check at start that the broker queues for the offline hub "
                          "(hub.broker_check); none: on with [mqtt] url, off when embedded")


class StorageConfig(BaseModel):
    """Where readings go: ``backend`` names the back-end, whose own options model (its
    ``Options``) validates the other keys (see :func:`check_storage_options`)."""

    model_config = ConfigDict(extra="allow")

    backend: str = Field("sqlite", pattern=r"^[a-z0-9_]{1,64}$")

    @property
    def raw_options(self) -> dict[str, Any]:
        """The keys besides ``backend``, as written."""
        return dict(self.model_extra or {})

    def options(self) -> "StorageOptions":
        """The validated options of the configured back-end."""
        return check_storage_options(self, "configuration")

    @property
    def path(self) -> Path | None:
        """The SQLite file, for the back-ends that have one."""
        value = self.raw_options.get("path", "fabcity-hub.db" if self.backend == "sqlite"
                                     else None)
        return None if value is None else Path(value)


def check_storage_options(storage: StorageConfig, source: str,
                          origins: Mapping[tuple[str, ...], str] | None = None,
                          ) -> "StorageOptions":
    """Validate ``[storage]`` against its back-end's options model; errors name
    ``storage.<key>`` and the file (or the ``FABCITY_STORAGE__…`` variable)."""
    from hub.storage.base import storage_class

    try:
        cls = storage_class(storage.backend)
    except ConfigError as exc:
        where = (origins or {}).get(("storage", "backend"), source)
        raise ConfigError(f"{where}: storage.backend: {exc}") from None
    try:
        return cls.Options.model_validate(storage.raw_options)
    except ValidationError as exc:
        prefixed = {("storage", *path[1:]): var for path, var in (origins or {}).items()
                    if path[:1] == ("storage",)}
        raise ConfigError(format_validation_error(
            source, exc, {path[1:]: var for path, var in prefixed.items()}, prefix="storage",
        )) from None


class ApiConfig(BaseModel):
    """The HTTP server."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(
        1, ge=1, le=64, description="API processes sharing the port (fabcity hub api only; "
                                    "docs/scaling.md)")
    max_concurrent_queries: int = Field(
        4, ge=1, le=64, description="history queries run at once (readings, AQI, climate)")
    max_queued_queries: int = Field(
        32, ge=0, le=10_000, description="queries waiting for a slot; beyond, 503")
    queue_timeout_s: float = Field(
        10.0, gt=0, le=300, description="longest wait for a slot before a 503")
    header_timeout_s: float = Field(
        10, gt=0, le=300, description="a client that has not sent its whole request header "
                                      "this long after connecting (or after its previous "
                                      "answer) is disconnected")
    keepalive_timeout_s: int = Field(5, ge=1, le=300,
                                     description="an idle keep-alive connection is closed after")
    max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576,
                                  description="largest request line plus header")
    max_connections: int = Field(
        1000, ge=1, le=1_000_000, description="connections (live streams included) served at "
                                              "once; requests beyond get 503")
    backlog: int = Field(2048, ge=1, le=65_535,
                         description="connections the kernel queues before accepting")
    rate_limit_per_s: float = Field(
        20.0, ge=0, le=100_000,
        description="anonymous requests per second per client address under /api/; 0: off")
    rate_limit_burst: int = Field(
        200, ge=1, le=1_000_000, description="requests a client may make at once")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=64 * 1024 * 1024, description="largest request body (413)")


class BrokerFilesConfig(BaseModel):
    """``[broker]``: the Mosquitto files ``fabcity hub devices`` renders and how the broker
    is told to read them again."""

    model_config = ConfigDict(extra="forbid")

    password_file: Path | None = Field(None, description="Mosquitto password_file")
    acl_file: Path | None = Field(None, description="Mosquitto acl_file")
    reload_command: str = Field("", description="run after both files are written (no "
                                "shell), e.g. systemctl reload mosquitto; \"\": none")


class IngestConfig(BaseModel):
    """How the hub batches writes and which timestamps it accepts."""

    model_config = ConfigDict(extra="forbid")

    batch_max_readings: int = Field(20_000, ge=1, le=100_000)
    flush_interval_s: float = Field(0.05, gt=0, le=10)
    receive_maximum: int = Field(20_000, ge=20, le=65_535)
    max_future_s: float = Field(MAX_FUTURE_S, gt=0)
    max_age_s: float = Field(MAX_AGE_S, gt=0)
    metrics_port: int | None = Field(
        None, ge=1, le=65535,
        description="fabcity hub ingest serves its Prometheus metrics on this port plus the "
                    "worker id when it is a number; none: not served (docs/scaling.md)")
    metrics_host: str = Field("127.0.0.1", description="address of the ingest metrics port")


GPC_SECTORS = ("I.1", "I.2", "I.3", "I.4", "I.5", "I.6")  # stationary energy, 3 scopes each
_DEVICE_SENSOR = r"^[a-z0-9][a-z0-9_-]{0,63}(/[a-z][a-z0-9_]{0,63})?$"


class MachineConfig(BaseModel):
    """``[[sites.machines]]``: a machine's name and, where it reports only power, the power
    above which it counts as running. ``sensor`` left out applies to every sensor of the
    device."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(pattern=SITE_PATTERN)
    sensor: str | None = Field(None, pattern=SENSOR_PATTERN)
    name: str | None = Field(None, min_length=1, max_length=120)
    running_w: float | None = Field(None, gt=0, le=1_000_000,
                                    description="running when power is above this (W)")


class SiteConfig(BaseModel):
    """A place the hub serves readings from: ``[[sites]]`` in ``hub.toml``.

    Devices name their site in their topic; a declared site gives it a human name, a place
    and the licence its data is published under. A device's own ``meta`` location wins over
    its site's. The climate keys (GPC sub-sector, emission factors, machines) feed
    :mod:`hub.climate`; see docs/climate.md.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SITE_PATTERN, description="the site in device topics")
    name: str = Field(min_length=1, max_length=120, description="what people call it")
    kind: str = Field("site", pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                      description="fablab, street, building, school, …")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    description: str = Field("", max_length=2000)
    licence: str = Field(DEFAULT_LICENCE, pattern=r"^[A-Za-z0-9.+-]{1,64}$",
                         description="SPDX identifier of the data licence")

    # -- climate (hub.climate) ------------------------------------------------------------
    gpc_sector: str | None = Field(
        None, description="GPC stationary-energy sub-sector: " + ", ".join(GPC_SECTORS))
    grid_kgco2e_per_kwh: float | dict[str, float] | None = Field(
        None, description="grid emission factor, or a table by year (\"2026\" = 0.25)")
    grid_loss_factor: float | None = Field(
        None, ge=0, lt=1, description="kWh lost in transmission and distribution per kWh used")
    grid_losses_included: bool = Field(
        False, description="the grid factor already includes T&D losses (scope 3 is IE)")
    gas_kgco2e_per_m3: float | None = Field(
        None, ge=0, le=100, description="scope 1 factor of the gas_volume meters (m3)")
    fuel_kgco2e_per_kwh: float | None = Field(
        None, ge=0, le=10, description="scope 1 factor of the fuel_energy meters (kWh)")
    fuel_combustion: bool | None = Field(
        None, description="false: no fuel is burnt on site (scope 1 is NO); unset: unknown")
    electricity_meters: list[str] | None = Field(
        None, description="device or device/sensor whose energy counts; default all")
    machines: list[MachineConfig] = []
    max_gap_s: float = Field(900, gt=0, le=7 * 86_400,
                             description="longest gap between readings that is bridged")

    @field_validator("gpc_sector")
    @classmethod
    def _known_sector(cls, sector: str | None) -> str | None:
        if sector is not None and sector not in GPC_SECTORS:
            raise ValueError(f"{sector!r} is not a GPC stationary-energy sub-sector with "
                             f"three scopes; use one of {', '.join(GPC_SECTORS)}")
        return sector

    @field_validator("grid_kgco2e_per_kwh")
    @classmethod
    def _factor_table(cls, factor: float | dict[str, float] | None,
                      ) -> float | dict[str, float] | None:
        values = factor.values() if isinstance(factor, dict) else [] if factor is None \
            else [factor]
        for year in factor if isinstance(factor, dict) else []:
            if not (len(year) == 4 and year.isdigit()):
                raise ValueError(f"table key {year!r} must be a year such as \"2026\"")
        for value in values:
            if not 0 <= value <= 5:
                raise ValueError(f"{value} kgCO2e/kWh is outside 0 to 5")
        return factor

    @field_validator("electricity_meters")
    @classmethod
    def _meter_names(cls, meters: list[str] | None) -> list[str] | None:
        for meter in meters or []:
            if re.fullmatch(_DEVICE_SENSOR, meter) is None:
                raise ValueError(f"{meter!r} must be a device or device/sensor name")
        return meters

    @model_validator(mode="after")
    def _both_or_neither(self) -> "SiteConfig":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self

    def grid_factor(self, year: int) -> float | None:
        """kgCO2e per kWh of grid electricity in ``year`` (``None``: not configured)."""
        factor = self.grid_kgco2e_per_kwh
        if isinstance(factor, dict):
            return factor.get(str(year))
        return factor

    def machine(self, device: str, sensor: str) -> MachineConfig | None:
        """The ``[[sites.machines]]`` entry of a sensor (exact sensor first, then device)."""
        exact = [m for m in self.machines if m.device == device and m.sensor == sensor]
        whole = [m for m in self.machines if m.device == device and m.sensor is None]
        found = exact or whole
        return found[0] if found else None

    def counts_electricity(self, device: str, sensor: str) -> bool:
        """Whether the energy of this series is the site's (``electricity_meters``)."""
        if self.electricity_meters is None:
            return True
        return device in self.electricity_meters or f"{device}/{sensor}" in \
            self.electricity_meters


class OpenDataConfig(BaseModel):
    """How the hub publishes: the licence of sites that do not declare one."""

    model_config = ConfigDict(extra="forbid")

    licence: str = Field(DEFAULT_LICENCE, pattern=r"^[A-Za-z0-9.+-]{1,64}$")
    attribution: str = Field("fabcity contributors", max_length=200,
                             description="who to credit, as the licence asks")
    tiles: str = Field(DEFAULT_TILES, max_length=300,
                       description="map tile URL template for the citizen page; \"\" disables")
    tiles_attribution: str = Field(DEFAULT_TILES_ATTRIBUTION, max_length=200,
                                   description="credit shown on the map when tiles are on")
    tiles_attribution_url: str = Field(
        "https://www.openstreetmap.org/copyright", max_length=300, pattern=r"^(https?://\S+)?$",
        description="page the map credit links to (the tile data's copyright); \"\" for none")

    @field_validator("tiles")
    @classmethod
    def _tile_template(cls, tiles: str) -> str:
        if tiles and not TILES_RE.match(tiles):
            raise ValueError("must be \"\" (no tiles) or an http(s) URL template with {z}, {x} "
                             "and {y}, e.g. " + DEFAULT_TILES)
        return tiles


class HubSettings(FileSettings):
    """Everything a hub needs to run."""

    sites: list[SiteConfig] = []
    open_data: OpenDataConfig = OpenDataConfig()
    mqtt: HubMqttConfig = HubMqttConfig()
    storage: StorageConfig = StorageConfig()
    api: ApiConfig = ApiConfig()
    broker: BrokerFilesConfig = BrokerFilesConfig()
    ingest: IngestConfig = IngestConfig()
    forward: list[ForwardConfig] = Field(
        [], description="[[forward]]: open-data networks fed from storage (docs/forwarding.md)")
    registry_path: Path | None = Field(
        None, description="device registry file; default: beside the SQLite storage file"
    )

    state_dir: Path | None = Field(
        None, description="where the hub keeps its own state (dead letters, rollup progress); "
                          "default: beside the SQLite storage file, else the current directory"
    )

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, sites: list[SiteConfig]) -> list[SiteConfig]:
        seen: set[str] = set()
        for site in sites:
            if site.id in seen:
                raise ValueError(f"id {site.id!r} is declared twice")
            seen.add(site.id)
        return sites

    def resolved_registry_path(self) -> Path:
        """Where the device registry lives."""
        if self.registry_path is not None:
            return self.registry_path
        base = self.storage.path or Path("fabcity-hub.db")
        return base.with_name(base.stem + "-registry.db")

    def resolved_state_path(self) -> Path:
        """The hub's state file (dead letters, rollup progress)."""
        if self.state_dir is not None:
            return self.state_dir / "fabcity-hub-state.db"
        base = self.storage.path or Path("fabcity-hub.db")
        return base.with_name(base.stem + "-state.db")


def load_hub_settings(
    path: Path | None, cli: Mapping[str, tuple[str, Any]] | None = None
) -> HubSettings:
    """Load and validate ``hub.toml`` (and command-line overrides); errors name the field
    and the rule."""
    settings = load_settings(HubSettings, path, cli)
    _, origins = env_overrides(HubSettings)
    for dotted, (option, _value) in (cli or {}).items():
        origins[tuple(dotted.split("."))] = f"command line: {option}"
    check_storage_options(settings.storage, str(path) if path else "configuration", origins)
    return settings
