"""MQTT connection details shared by the edge publisher and the hub ingest."""

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fabcity.errors import ConfigError

__all__ = ["BROKER_URL_PATTERN", "BrokerAddress", "BrokerConfig", "apply_credentials",
           "parse_broker_url"]

BROKER_URL_PATTERN = r"^mqtts?://[^/\s]+$"


class BrokerConfig(BaseModel):
    """``[mqtt]``: how a client (an edge agent, the hub) reaches the broker and logs in.

    Each role extends it: the edge has a default URL, the hub may embed its own broker.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, pattern=BROKER_URL_PATTERN,
                            description="mqtt://host[:1883] or mqtts://host[:8883] (TLS)")
    username: str | None = None
    password: str | None = None
    password_file: Path | None = Field(
        None, description="a file holding the password (first line), instead of password")
    ca_file: Path | None = Field(None, description="CA certificate for mqtts://")
    keepalive_s: int = Field(30, ge=5, le=3600)

    @field_validator("password_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None:
            try:
                first = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
                                 ) from None
            if not first or not first[0].strip():
                raise ValueError(f"{path} is empty: its first line must be the password")
        return path

    @model_validator(mode="after")
    def _password_from_file(self) -> "BrokerConfig":
        """Read ``password_file`` once, at start, so the secret needs no environment entry."""
        if self.password_file is not None:
            if self.password is not None:
                raise ValueError("give password or password_file, not both")
            self.password = self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        return self


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Host, port and whether to use TLS."""

    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; raise :class:`ConfigError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"mqtt.url: {url!r} must look like mqtt://host:1883 or mqtts://host:8883")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"mqtt.url: {url!r} has an invalid port") from None
    return BrokerAddress(parts.hostname, port, tls)


def apply_credentials(
    client: paho.Client,
    address: BrokerAddress,
    username: str | None,
    password: str | None,
    ca_file: Path | None,
) -> None:
    """Set user name, password and TLS (with an optional private CA) on a paho client."""
    if username:
        client.username_pw_set(username, password)
    if address.tls:
        if ca_file is not None and not ca_file.is_file():
            raise ConfigError(f"mqtt.ca_file: {ca_file} does not exist")
        client.tls_set(ca_certs=str(ca_file) if ca_file else None,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
