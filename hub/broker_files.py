"""Mosquitto's password and ACL files, rendered from the hub's device credentials.

The password file holds Mosquitto's own PBKDF2-SHA512 lines (``user:$7$iterations$salt$hash``,
salt and hash in base64, as ``mosquitto_passwd`` writes them), so the broker, and
``mosquitto_passwd -D`` by hand, accept what the hub writes. The ACL gives each device its own
block: it may publish only under its own ``fabcity/v1/SITE/DEVICE/`` and read only its own
``cmd`` and ``ack``; the hub's account reads everything. Both files are replaced atomically
(temporary file, fsync, rename) so the broker never reads half a file.
"""

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fabcity.errors import ConfigError

__all__ = ["AclEntry", "check_mosquitto_hash", "mosquitto_hash", "render_acl",
           "render_password_file", "run_reload", "write_atomically"]

#: Passwords the hub issues are 32 random bytes, so a slow hash adds little; the broker pays
#: this many PBKDF2 rounds at every connect (``mosquitto_passwd`` itself uses 101).
PBKDF2_ITERATIONS = 1000
SALT_BYTES = 12  # what mosquitto_passwd uses
RELOAD_TIMEOUT_S = 30.0


def mosquitto_hash(password: str, iterations: int = PBKDF2_ITERATIONS,
                   salt: bytes | None = None) -> str:
    """``$7$iterations$salt$hash``: Mosquitto's PBKDF2-SHA512 password hash."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def check_mosquitto_hash(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a ``$7$`` line's hash (tests, and checking by hand)."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt),
                                     int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One broker account: a device's (``site`` and ``device`` set) or the hub's."""

    username: str
    password_hash: str
    site: str | None = None
    device: str | None = None


def render_password_file(entries: Iterable[AclEntry]) -> str:
    """``username:hash`` lines, one per account."""
    lines = ["# Written by `fabcity hub devices`: edits by hand are overwritten."]
    for entry in entries:
        if ":" in entry.username or "\n" in entry.username:
            raise ValueError(f"user name {entry.username!r} may not hold ':' or a newline")
        lines.append(f"{entry.username}:{entry.password_hash}")
    return "\n".join(lines) + "\n"


def render_acl(entries: Iterable[AclEntry], hub_username: str | None,
               ha_prefix: str = "homeassistant") -> str:
    """Explicit per-account blocks; no ``pattern`` lines, so a name cannot borrow another's
    topics."""
    lines = ["# Written by `fabcity hub devices`: edits by hand are overwritten.",
             "# Layout: fabcity/v1/{site}/{device}/{readings|status|meta|cmd|ack}", ""]
    if hub_username:
        lines += [f"user {hub_username}",
                  "topic read fabcity/v1/#",
                  "topic write fabcity/v1/+/+/cmd",
                  "topic write fabcity/v1/+/+/ack",
                  "topic read $SYS/#",
                  # the start-up broker check's own topics (hub.broker_check)
                  "topic readwrite fabcity/_probe/#", ""]
    for entry in entries:
        if entry.site is None or entry.device is None:
            continue
        own = f"fabcity/v1/{entry.site}/{entry.device}"
        lines += [f"user {entry.username}",
                  f"topic write {own}/#",
                  f"topic read {own}/cmd",
                  f"topic read {own}/ack",
                  # Home Assistant discovery (edge [homeassistant] discovery = true)
                  f"topic write {ha_prefix}/+/fabcity_{entry.site}_{entry.device}/#", ""]
    return "\n".join(lines)


def write_atomically(path: Path, text: str, mode: int = 0o640) -> None:
    """Replace ``path`` with ``text``: a reader sees the old file or the new one, never half.
    An existing file keeps its mode and group."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.stat()
        mode, gid = st.st_mode & 0o777, st.st_gid
    except FileNotFoundError:
        gid = -1
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if gid != -1:
            with contextlib.suppress(PermissionError):  # not in the group: ours stays
                os.chown(tmp, -1, gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def run_reload(command: str) -> None:
    """Run ``[broker] reload_command`` (no shell); raise :class:`ConfigError` on failure."""
    argv = shlex.split(command)
    if not argv:
        return
    try:
        # The operator's reload_command, split into argv and run without a shell.
        done = subprocess.run(argv, capture_output=True, text=True, timeout=RELOAD_TIMEOUT_S,  # noqa: S603
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"broker.reload_command: {command!r} could not run: {exc}") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-500:]
        raise ConfigError(f"broker.reload_command: {command!r} exited with "
                          f"{done.returncode}: {output}")
