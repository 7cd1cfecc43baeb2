"""API keys: who may change the hub over HTTP.

A key reads ``fck_<id>_<secret>``; the hub keeps its id, name, scope and the SHA-256 of the
whole key in a table of its state file, never the key itself. The secret is 32 random bytes,
so a fast hash is enough (no dictionary can guess it) and checking a key costs one primary-key
lookup. Scopes: ``read`` (exempt from the anonymous rate limit, may list admin data) and
``admin`` (may also change state). A revoked key stays listed, with when it was revoked.
"""

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fabcity.errors import FabcityError
from fabcity.reading import now_ms
from hub.statefile import open_state

__all__ = ["SCOPES", "ApiKey", "ApiKeyError", "ApiKeys", "Scope"]

Scope = Literal["read", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "admin")
KEY_PREFIX = "fck"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
) WITHOUT ROWID;
"""


class ApiKeyError(FabcityError, ValueError):
    """A key cannot be created or revoked (unknown id, bad scope)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as kept (without its secret)."""

    id: str
    name: str
    scope: Scope
    created_ms: int
    revoked_ms: int | None

    def allows(self, scope: Scope) -> bool:
        """Whether this key may act with ``scope`` (admin includes read)."""
        return self.revoked_ms is None and (self.scope == "admin" or scope == self.scope)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The key table in the hub's state file; shared by the CLI and the running API (a key
    revoked from the command line stops working at its next request)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_state(self.path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def create(self, name: str, scope: Scope) -> tuple[ApiKey, str]:
        """A new key: its record and the key itself, shown once."""
        if scope not in SCOPES:
            raise ApiKeyError(f"scope {scope!r} must be one of {', '.join(SCOPES)}")
        if not name.strip() or len(name) > 120:
            raise ApiKeyError("name must be 1 to 120 characters")
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        created = now_ms()
        with self._lock:
            self._conn.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                               (key_id, name, scope, _digest(key), created))
        return ApiKey(key_id, name, scope, created, None), key

    def keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT id, name, scope, created_ms, revoked_ms FROM "
                                      "api_keys ORDER BY created_ms, id").fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> None:
        """Stop a key from working; it stays listed."""
        with self._lock:
            changed = self._conn.execute(
                "UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
                (now_ms(), key_id)).rowcount
        if not changed:
            raise ApiKeyError(f"no active key with id {key_id!r} (see `fabcity hub keys list`)")

    def check(self, key: str) -> ApiKey | None:
        """The key's record if ``key`` is a key this hub issued and has not revoked."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT id, name, scope, created_ms, revoked_ms, key_sha256 FROM api_keys "
                "WHERE id = ?", (parts[1],)).fetchone()
        if row is None or not hmac.compare_digest(row[5], _digest(key)) or row[4] is not None:
            return None
        return ApiKey(*row[:5])
