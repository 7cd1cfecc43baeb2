"""Test plumbing: an HTTP tee standing in for an InfluxDB 2.x server.

There is no InfluxDB 2.x here. The ``influxdb`` back-end writes through ``/api/v2/write``
and reads with InfluxQL over ``/query``; this proxy sends each write, body unchanged (gzip
and its ``Content-Encoding`` included), both to VictoriaMetrics' ``/api/v2/write`` and to
InfluxDB 1.6's ``/write``, and serves ``/query`` and ``/ping`` from InfluxDB 1.6, so the
back-end's reads see exactly what it wrote. Buckets map to InfluxDB 1.6 databases and
retention policies as DBRP mappings would (created on first use); ``/api/v2/dbrps`` and
every other path answer 404, as on a server without the v2 management API.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["InfluxTee"]

_PASSED_HEADERS = ("Content-Type", "Content-Encoding", "Accept", "Accept-Encoding")


def _send(url: str, method: str, body: bytes | None,
          headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class InfluxTee:
    """A threaded proxy on a free port: writes to VictoriaMetrics *and* InfluxDB 1.6, reads
    from InfluxDB 1.6. ``dbrp`` maps a bucket to ``(database, retention policy)``; an
    unmapped bucket is a database of that name with its default retention policy."""

    def __init__(self, victoria_url: str, influx1_url: str,
                 dbrp: dict[str, tuple[str, str]] | None = None) -> None:
        self.victoria_url = victoria_url.rstrip("/")
        self.influx1_url = influx1_url.rstrip("/")
        self.dbrp = dict(dbrp or {})
        self.writes = 0
        self._created: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        tee = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k in _PASSED_HEADERS}
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/api/v2/write" and self.command == "POST":
                    answer = tee._write(dict(urllib.parse.parse_qsl(url.query)), body or b"",
                                        headers)
                elif url.path in ("/query", "/ping"):
                    answer = _send(tee.influx1_url + self.path, self.command, body, headers)
                else:
                    answer = (404, {"Content-Type": "application/json"},
                              b'{"code":"not found","message":"path not found"}')
                status, reply_headers, reply = answer
                self.send_response(status)
                for key, value in reply_headers.items():
                    if key.lower() in ("content-type", "retry-after", "x-influxdb-error"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="influx-tee",
                                        daemon=True)

    def start(self) -> InfluxTee:
        """Serve; the mapped databases exist from now on, as buckets on a real server."""
        for database, rp in self.dbrp.values():
            self._ensure(database, rp or None)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(10)
        self.server.server_close()

    def _ensure(self, database: str, rp: str | None) -> None:
        """Create the InfluxDB 1.6 database (and retention policy) once."""
        key = (database, rp or "")
        with self._lock:
            if key in self._created:
                return
            statements = [f'CREATE DATABASE "{database}"']
            if rp:
                statements.append(f'CREATE RETENTION POLICY "{rp}" ON "{database}" '
                                  "DURATION INF REPLICATION 1")
            for statement in statements:
                data = urllib.parse.urlencode({"q": statement}).encode()
                status, _, reply = _send(self.influx1_url + "/query", "POST", data,
                                         {"Content-Type": "application/x-www-form-urlencoded"})
                if status != 200 or (b'"error"' in reply and b"already exists" not in reply):
                    raise RuntimeError(f"InfluxDB 1.6 refused {statement}: {reply!r}")
            self._created.add(key)

    def _write(self, params: dict[str, str], body: bytes,
               headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        bucket = params.get("bucket", "")
        database, rp = self.dbrp.get(bucket, (bucket, ""))
        self._ensure(database, rp or None)
        query = {"db": database, "precision": params.get("precision", "ns")}
        if rp:
            query["rp"] = rp
        influx = _send(f"{self.influx1_url}/write?{urllib.parse.urlencode(query)}", "POST",
                       body, headers)
        if influx[0] >= 300:
            return influx
        victoria = _send(f"{self.victoria_url}/api/v2/write?{urllib.parse.urlencode(params)}",
                         "POST", body, headers)
        with self._lock:
            self.writes += 1
        return victoria
