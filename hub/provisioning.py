"""Device provisioning: who may publish as which device.

Each provisioned device gets a broker account named ``SITE.DEVICE`` (names cannot hold a dot,
so two sites may both have a ``pi-air``) and a random password shown once; the hub keeps only
Mosquitto's hash of it, in a table of its state file. Every change re-renders the broker's
password and ACL files (:mod:`hub.broker_files`) and runs ``[broker] reload_command``.
"""

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from fabcity.errors import ConfigError, FabcityError
from fabcity.names import SITE_RE
from fabcity.reading import now_ms
from hub.broker_files import (
    AclEntry,
    mosquitto_hash,
    render_acl,
    render_password_file,
    run_reload,
    write_atomically,
)
from hub.config import HubSettings
from hub.statefile import open_state

__all__ = [
    "DeviceCredential",
    "IssuedCredential",
    "Provisioner",
    "ProvisioningError",
    "device_username",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_credentials (
    site TEXT NOT NULL, device TEXT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (site, device)
) WITHOUT ROWID;
"""


class ProvisioningError(FabcityError, ValueError):
    """A device cannot be added or revoked (already there, unknown, bad name)."""


def device_username(site: str, device: str) -> str:
    """The broker account of a device: unique across sites."""
    return f"{site}.{device}"


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    """A provisioned device as kept: no password, only when it was issued."""

    site: str
    device: str
    username: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """What ``devices add`` hands out once."""

    site: str
    device: str
    username: str
    password: str


class Provisioner:
    """The device-credentials table plus the broker files rendered from it."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.path = settings.resolved_state_path()
        self._lock = threading.Lock()
        self._conn = open_state(self.path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def devices(self) -> list[DeviceCredential]:
        """Every provisioned device, by site then device."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT site, device, username, created_ms FROM device_credentials "
                "ORDER BY site, device").fetchall()
        return [DeviceCredential(*row) for row in rows]

    def add(self, site: str, device: str) -> IssuedCredential:
        """Record a device with a fresh password, render the broker files, reload."""
        for what, name in (("site", site), ("device", device)):
            if not SITE_RE.fullmatch(name):
                raise ProvisioningError(f"{what} {name!r} must match {SITE_RE.pattern}")
        username = device_username(site, device)
        if username == self.settings.mqtt.username:
            raise ProvisioningError(f"{username!r} is the hub's own broker account")
        password = secrets.token_urlsafe(32)
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO device_credentials VALUES (?, ?, ?, ?, ?)",
                    (site, device, username, mosquitto_hash(password), now_ms()))
            except sqlite3.IntegrityError:
                raise ProvisioningError(
                    f"{site}/{device} is already provisioned: revoke it first to issue a new "
                    "password") from None
        self.apply()
        return IssuedCredential(site, device, username, password)

    def revoke(self, site: str, device: str) -> None:
        """Forget a device's credentials, render the broker files, reload."""
        with self._lock:
            gone = self._conn.execute(
                "DELETE FROM device_credentials WHERE site = ? AND device = ?",
                (site, device)).rowcount
        if not gone:
            raise ProvisioningError(f"{site}/{device} is not provisioned")
        self.apply()

    def _entries(self) -> list[AclEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT username, password_hash, site, device FROM device_credentials "
                "ORDER BY site, device").fetchall()
        return [AclEntry(*row) for row in rows]

    def apply(self) -> None:
        """Write the password and ACL files from the table, then run ``reload_command``.

        The hub's own ``[mqtt] username``/``password`` becomes one more account, allowed to
        read every device's topics. Without ``[broker]`` files nothing is written.
        """
        broker = self.settings.broker
        if broker.password_file is None or broker.acl_file is None:
            raise ConfigError("broker.password_file and broker.acl_file must be set in "
                              "hub.toml for the hub to write the broker's files")
        entries = self._entries()
        hub_user = self.settings.mqtt.username
        accounts = list(entries)
        if hub_user:
            if not self.settings.mqtt.password:
                raise ConfigError("mqtt.password (or mqtt.password_file) must be set: the "
                                  f"hub's account {hub_user!r} goes into the password file")
            accounts.insert(0, AclEntry(hub_user, mosquitto_hash(self.settings.mqtt.password)))
        write_atomically(Path(broker.password_file), render_password_file(accounts))
        write_atomically(Path(broker.acl_file), render_acl(entries, hub_user))
        run_reload(broker.reload_command)
