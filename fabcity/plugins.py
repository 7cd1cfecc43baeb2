"""Plugins: drivers, storage back-ends and CLI commands register by entry point.

Groups: ``fabcity.drivers`` (edge sensor drivers), ``fabcity.storage`` (hub back-ends),
``fabcity.commands`` (CLI sub-commands), ``fabcity.forwarders`` (hub forwarders to
open-data networks). A third-party package adds a driver by declaring
``[project.entry-points."fabcity.drivers"] mysensor = "mypkg.driver:MySensor"``.
"""

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from fabcity.errors import ConfigError

__all__ = ["available", "load"]

_KINDS = {"fabcity.drivers": "driver", "fabcity.storage": "storage back-end",
          "fabcity.commands": "command", "fabcity.forwarders": "forwarder"}


def _group(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def available(group: str) -> list[str]:
    """Names registered in ``group``, sorted."""
    return sorted(_group(group))


def load(group: str, name: str) -> Any:
    """Load the object registered as ``name`` in ``group``; unknown names list the known ones."""
    registered = _group(group)
    if name not in registered:
        known = ", ".join(sorted(registered)) or "none"
        kind = _KINDS.get(group, group)
        raise ConfigError(f"unknown {kind} {name!r}: known are {known}")
    return registered[name].load()
