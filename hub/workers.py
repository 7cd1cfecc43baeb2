"""Ingest workers: the MQTT client id each one uses, and the rule that keeps two apart.

A broker knows a persistent session by its client id: a worker that restarts with the same
id resumes its session (and the messages the broker kept for it); two connections with one
id kick each other off, over and over. So each ingest worker takes ``<client_id>-<worker
id>`` with a worker id it keeps across restarts (``--worker-id`` or ``FABCITY_WORKER_ID``;
the systemd template passes its instance name). Without a worker id the configured client
id is used as it is (one ingest per hub, as ``fabcity hub serve`` always did).

On one machine a lock file per client id, beside the hub state file, refuses a second
process with the same id with a message saying what to do, instead of letting the two fight
over the session. Workers on other machines must get distinct worker ids (e.g. the host
name).
"""

import os
import re
from pathlib import Path

from fabcity.errors import ConfigError
from hub.filelock import FileLock

__all__ = ["WORKER_ID_ENV", "WORKER_ID_RE", "claim_client_id", "resolve_worker_id",
           "worker_client_id"]

WORKER_ID_ENV = "FABCITY_WORKER_ID"
WORKER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def resolve_worker_id(option: str | None) -> str | None:
    """The worker id from ``--worker-id``, else ``FABCITY_WORKER_ID``, else None."""
    value, origin = option, "command line: --worker-id"
    if value is None:
        value, origin = os.environ.get(WORKER_ID_ENV) or None, f"environment: {WORKER_ID_ENV}"
    if value is None:
        return None
    if not WORKER_ID_RE.fullmatch(value):
        raise ConfigError(f"{origin}: worker id {value!r} must match [A-Za-z0-9_-]{{1,32}} "
                          "(e.g. 0, 1, 2 or the host name)")
    return value


def worker_client_id(client_id: str, worker_id: str | None) -> str:
    """``<client_id>-<worker_id>``, or the configured id for a hub without a worker id."""
    return client_id if worker_id is None else f"{client_id}-{worker_id}"


def claim_client_id(state_dir: Path, client_id: str) -> FileLock:
    """Lock ``client_id`` for this process; a ConfigError if another process here holds it."""
    lock = FileLock(state_dir / f"fabcity-ingest-{client_id}.lock")
    if not lock.try_acquire():
        holder = lock.holder() or "another process"
        raise ConfigError(
            f"MQTT client id {client_id!r} is already used by an ingest on this machine "
            f"({holder}): two connections with one id kick each other off the broker. Give "
            f"each ingest worker its own id: fabcity hub ingest --worker-id N (or "
            f"{WORKER_ID_ENV}=N), with [mqtt] shared_group set to share the readings")
    return lock
