"""MQTT connection details shared by the edge publisher and the hub ingest."""

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho

from fabcity.errors import ConfigError

__all__ = ["BrokerAddress", "apply_credentials", "parse_broker_url"]


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
