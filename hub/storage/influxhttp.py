"""One pooled keep-alive HTTP client for InfluxDB's ``/write``, ``/query`` and ``/ping``.

Transport failures and the answers that mean "try again later" (5xx, 429, refused
credentials) become :class:`fabcity.errors.StorageUnavailable`; other statuses are left to
the caller, which knows what a 400 or a 404 means for its request.
"""

import json
from urllib.parse import urlencode

import urllib3

from fabcity.errors import StorageUnavailable

__all__ = ["InfluxHTTP", "error_text"]

POOL_SIZE = 8  # connections kept alive: ingest writes while API requests read


def error_text(response: urllib3.BaseHTTPResponse) -> str:
    """The server's own error message from an answer (JSON ``error``, header or body)."""
    body = response.data.decode("utf-8", "replace").strip()
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        for key in ("error", "message"):
            if isinstance(decoded.get(key), str):
                return str(decoded[key])
    header = response.headers.get("X-Influxdb-Error")
    return header or body[:500] or f"HTTP {response.status}"


class InfluxHTTP:
    """Requests to one InfluxDB server; thread-safe (urllib3 pools connections)."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        verify_ssl: bool = True,
        credentials_hint: str = "check the configured credentials",
    ) -> None:
        self.url = url.rstrip("/")
        self.credentials_hint = credentials_hint
        self.closed = False
        self._headers = dict(headers or {})  # urllib3 drops pool headers given request headers
        self._pool = urllib3.PoolManager(
            num_pools=2, maxsize=POOL_SIZE, retries=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            cert_reqs="CERT_REQUIRED" if verify_ssl else "CERT_NONE",
        )

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; raise ``StorageUnavailable`` for what a retry may cure."""
        if self.closed:
            raise StorageUnavailable(f"storage is closed (InfluxDB at {self.url})")
        url = f"{self.url}{path}?{urlencode(params)}" if params else self.url + path
        try:
            response = self._pool.request(method, url, body=body,
                                          headers={**self._headers, **(headers or {})})
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"InfluxDB at {self.url} is unreachable: {exc}") from exc
        status = response.status
        if status in (401, 403):
            raise StorageUnavailable(
                f"InfluxDB at {self.url} refused the credentials (HTTP {status}: "
                f"{error_text(response)}): {self.credentials_hint}")
        if status == 429 or status >= 500:
            raise StorageUnavailable(
                f"InfluxDB at {self.url} answered HTTP {status}: {error_text(response)}")
        return response

    def close(self) -> None:
        """Drop the connections; later requests raise ``StorageUnavailable``."""
        self.closed = True
        self._pool.clear()
