"""The ``influxdb`` back-end's write path against a real VictoriaMetrics (InfluxDB v2 write
API), its error handling against small scripted HTTP servers, its bucket and DBRP set-up
against an in-memory InfluxDB 2.x management API, and its options."""

import gzip
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fabcity.errors import ConfigError, ReadingsRefused, StorageUnavailable
from fabcity.reading import Reading
from hub.config import StorageConfig, check_storage_options
from hub.storage.influxdb2 import InfluxDB2Storage
from hub.storage.influxdb2_setup import BucketPlan, set_up
from tests.servers import VictoriaMetrics, free_port

T0 = 1_764_194_700_000  # 2025-11-26T22:05:00Z
QUICK: dict[str, Any] = {"max_retries": 2, "retry_interval_ms": 20, "max_retry_delay_ms": 50,
         "timeout_s": 2.0}

Answer = tuple[int, dict[str, str], bytes]


class Scripted:
    """An HTTP server answering ``/api/v2/write`` from a script (then 204), recording each
    request; other paths get 404."""

    def __init__(self, script: list[Answer] | None = None,
                 api: Callable[[str, str, dict[str, str], bytes], Answer] | None = None) -> None:
        self.script = list(script or [])
        self.api = api
        self.requests: list[tuple[float, str, dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                owner.requests.append((time.monotonic(), self.path, dict(self.headers), body))
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/api/v2/write":
                    status, headers, reply = owner.script.pop(0) if owner.script else (204, {}, b"")
                elif owner.api is not None:
                    status, headers, reply = owner.api(self.command, url.path, params, body)
                else:
                    status, headers, reply = 404, {}, b"404 page not found"
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def writes(self) -> list[tuple[float, str, dict[str, str], bytes]]:
        return [r for r in self.requests if r[1].startswith("/api/v2/write")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def start(*script: Answer, **kwargs: Any) -> Scripted:
        servers.append(Scripted(list(script), **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _json(status: int, message: str) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(
        {"code": "invalid", "message": message}).encode()


def readings(n: int, device: str = "d1", start_ms: int = T0) -> list[Reading]:
    return [Reading("lab", device, "bme280", "temperature", 20.0 + i / 8, start_ms + i)
            for i in range(n)]


def open_storage(url: str, bucket: str = "fabcity", **options: Any) -> InfluxDB2Storage:
    return InfluxDB2Storage(url=url, token="secret-token", org="fablab", bucket=bucket,
                            **options)


def vm_requests(vm: VictoriaMetrics) -> int:
    """How many InfluxDB v2 writes VictoriaMetrics served."""
    with urllib.request.urlopen(vm.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(int(float(m)) for m in re.findall(
        r'^vm_http_requests_total\{path="/influx/write"[^}]*\} (\S+)$', text, re.M))


# -- write path against VictoriaMetrics ------------------------------------------------------
@pytest.mark.parametrize("use_gzip", [True, False])
def test_values_tags_and_ms_timestamps_reach_the_server(
        victoria_metrics: VictoriaMetrics, use_gzip: bool) -> None:
    device = f"gz{int(use_gzip)}"
    batch = [Reading("lab", device, "scd30", "co2", 412.5, T0 + 1),
             Reading("lab", device, "scd30", "co2", 415.25, T0 + 1_001),
             Reading("lab", device, "probe", "widgets", -3.0, T0 + 7, unit="items")]
    storage = open_storage(victoria_metrics.url, gzip=use_gzip)
    try:
        storage.write(batch)
        assert storage.health() == "ok"
    finally:
        storage.close()
    series = {(s["metric"]["__name__"], s["metric"]["sensor"]): s  # type: ignore[index]
              for s in victoria_metrics.export(f'{{device="{device}"}}')}
    co2 = series[("co2_value", "scd30")]
    assert co2["metric"] == {"__name__": "co2_value", "site": "lab", "device": device,
                             "sensor": "scd30", "unit": "ppm"}
    assert co2["values"] == [412.5, 415.25]
    assert co2["timestamps"] == [T0 + 1, T0 + 1_001]
    widgets = series[("widgets_value", "probe")]
    assert widgets["metric"]["unit"] == "items"  # type: ignore[index]
    assert widgets["values"] == [-3.0] and widgets["timestamps"] == [T0 + 7]


def test_replayed_batch_is_stored_once(victoria_metrics: VictoriaMetrics) -> None:
    batch = readings(500, device="replay")
    storage = open_storage(victoria_metrics.url)
    try:
        storage.write(batch)
        storage.write(batch)
    finally:
        storage.close()
    [series] = victoria_metrics.export('{device="replay"}')
    assert series["timestamps"] == [r.ts_ms for r in batch]


def test_big_batch_is_split_by_batch_size(victoria_metrics: VictoriaMetrics) -> None:
    batch = readings(25_000, device="big")
    storage = open_storage(victoria_metrics.url, batch_size=4_000)
    before = vm_requests(victoria_metrics)
    try:
        storage.write(batch)
    finally:
        storage.close()
    deadline = time.monotonic() + 5  # VictoriaMetrics updates its counters lazily
    while vm_requests(victoria_metrics) - before < 7 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vm_requests(victoria_metrics) - before == 7  # 6 x 4,000 + 1,000
    [series] = victoria_metrics.export('{device="big"}')
    assert len(series["timestamps"]) == 25_000  # type: ignore[arg-type]


def test_requests_carry_the_token_and_at_most_batch_size_lines(scripted: Any) -> None:
    server = scripted()
    storage = open_storage(server.url, batch_size=300, gzip=True)
    try:
        storage.write(readings(1_000))
    finally:
        storage.close()
    writes = server.writes()
    assert [body.count(b"\n") + 1 for _, _, _, body in writes] == [300, 300, 300, 100]
    _, path, headers, _ = writes[0]
    assert headers["Authorization"] == "Token secret-token"
    assert headers["Content-Encoding"] == "gzip"
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query)) == {
        "org": "fablab", "bucket": "fabcity", "precision": "ms"}


# -- errors ----------------------------------------------------------------------------------
def test_nobody_listening_is_unavailable_quickly() -> None:
    storage = open_storage(f"http://127.0.0.1:{free_port()}", **QUICK)
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable, match="after retries"):
            storage.write(readings(10))
        assert time.monotonic() - started < 5
        assert storage.health() != "ok"
    finally:
        storage.close()


def test_server_error_is_retried_and_write_returns_once_stored(scripted: Any) -> None:
    server = scripted(_json(500, "internal error"))
    storage = open_storage(server.url, **QUICK)
    try:
        storage.write(readings(5))
        assert storage.health() == "ok"
    finally:
        storage.close()
    writes = server.writes()
    assert len(writes) == 2 and writes[0][3] == writes[1][3]


def test_too_many_requests_honours_retry_after_and_health_says_retrying(scripted: Any) -> None:
    server = scripted((429, {"Retry-After": "1"}, b""))
    storage = open_storage(server.url, **QUICK)
    seen: list[str] = []

    def watch() -> None:
        for _ in range(15):
            seen.append(storage.health())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    try:
        watcher.start()
        storage.write(readings(5))
        watcher.join()
    finally:
        storage.close()
    first, second = server.writes()
    assert second[0] - first[0] >= 0.95
    assert any(state.startswith("retrying: ") for state in seen)
    assert storage.health() == "ok"


def test_bad_request_refuses_readings_with_the_servers_message(scripted: Any) -> None:
    server = scripted(_json(400, 'partial write: field type conflict: input field "value"'))
    storage = open_storage(server.url, **QUICK)
    try:
        with pytest.raises(ReadingsRefused, match="field type conflict") as caught:
            storage.write(readings(5))
        assert "field type conflict" in caught.value.reason
        assert len(server.writes()) == 1  # not retried
        storage.write(readings(5))  # the next batch goes through
    finally:
        storage.close()


@pytest.mark.parametrize("status", [413, 422])
def test_other_unfixable_client_errors_refuse_readings(scripted: Any, status: int) -> None:
    server = scripted(_json(status, "too big"))
    storage = open_storage(server.url, **QUICK)
    try:
        with pytest.raises(ReadingsRefused, match="too big"):
            storage.write(readings(5))
    finally:
        storage.close()


def test_refused_token_is_unavailable_and_says_so(scripted: Any) -> None:
    server = scripted(_json(401, "unauthorized access"))
    storage = open_storage(server.url, **QUICK)
    try:
        with pytest.raises(StorageUnavailable, match="refused the token") as caught:
            storage.write(readings(5))
        assert "check `token`" in str(caught.value)
        assert "token" in storage.health()
    finally:
        storage.close()


def test_exhausted_retries_are_unavailable(scripted: Any) -> None:
    server = scripted(*[_json(503, "overloaded")] * 3)
    storage = open_storage(server.url, **QUICK)
    try:
        with pytest.raises(StorageUnavailable, match=r"overloaded|503"):
            storage.write(readings(5))
    finally:
        storage.close()


def test_write_without_an_answer_gives_up_and_the_next_one_is_not_confused(
        scripted: Any) -> None:
    server = scripted((429, {"Retry-After": "2"}, b""))
    storage = open_storage(server.url, max_retries=1, retry_interval_ms=10,
                           max_retry_delay_ms=10, timeout_s=0.3)  # no answer within ~0.9 s
    try:
        with pytest.raises(StorageUnavailable, match="timed out"):
            storage.write(readings(5))
        time.sleep(1.5)  # the abandoned request is retried and succeeds meanwhile
        storage.write(readings(7, device="d2"))
        assert storage.health() == "ok"
    finally:
        storage.close()


# -- set-up: buckets and DBRP mappings -------------------------------------------------------
class FakeInfluxDB2:
    """Just enough of the InfluxDB 2.x management API: orgs, buckets, dbrps."""

    def __init__(self, buckets: dict[str, int]) -> None:
        self.buckets = {name: {"id": f"b{i}", "name": name, "retentionRules": (
            [{"type": "expire", "everySeconds": keep}] if keep else [])}
            for i, (name, keep) in enumerate(buckets.items())}
        self.dbrps: list[dict[str, Any]] = []

    def __call__(self, method: str, path: str, params: dict[str, str], body: bytes) -> Answer:
        ok = {"Content-Type": "application/json"}
        if path == "/api/v2/orgs":
            if params.get("org") != "fablab":
                return _json(404, f'organization name "{params.get("org")}" not found')
            return 200, ok, json.dumps({"orgs": [{"id": "o1", "name": "fablab"}]}).encode()
        if path == "/api/v2/buckets" and method == "GET":
            found = [b for b in self.buckets.values() if b["name"] == params["name"]]
            return 200, ok, json.dumps({"buckets": found}).encode()
        if path == "/api/v2/buckets":
            bucket = json.loads(body)
            bucket["id"] = f"b{len(self.buckets)}"
            self.buckets[bucket["name"]] = bucket
            return 201, ok, json.dumps(bucket).encode()
        if path == "/api/v2/dbrps" and method == "GET":
            assert params["orgID"] == "o1"
            found = [d for d in self.dbrps if d["bucketID"] == params["bucketID"]]
            return 200, ok, json.dumps({"content": found}).encode()
        if path == "/api/v2/dbrps":
            self.dbrps.append(json.loads(body))
            return 201, ok, body
        return _json(404, "path not found")


PLANS = [BucketPlan("fabcity", "30d", "autogen", default=True),
         BucketPlan("fabcity_1m", "inf", "rollup_1m", create=True),
         BucketPlan("fabcity_1h", "inf", "rollup_1h", create=True)]


def test_set_up_creates_rollup_buckets_and_dbrp_mappings_once(scripted: Any) -> None:
    fake = FakeInfluxDB2({"fabcity": 30 * 86_400})
    server = scripted(api=fake)
    result = set_up(server.url, "t", "fablab", PLANS, "fabcity", create_dbrp=True)
    assert result.v2_api and result.warnings == []
    assert result.created_buckets == ["fabcity_1m", "fabcity_1h"]
    assert fake.buckets["fabcity_1h"]["retentionRules"] == []
    assert [(d["bucketID"], d["database"], d["retention_policy"], d["default"])
            for d in fake.dbrps] == [("b0", "fabcity", "autogen", True),
                                     ("b1", "fabcity", "rollup_1m", False),
                                     ("b2", "fabcity", "rollup_1h", False)]
    again = set_up(server.url, "t", "fablab", PLANS, "fabcity", create_dbrp=True)
    assert again.created_buckets == [] and again.created_dbrps == [] and len(fake.dbrps) == 3


def test_set_up_warns_about_retention_missing_raw_bucket_and_unknown_org(
        scripted: Any, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeInfluxDB2({"fabcity": 7 * 86_400})
    server = scripted(api=fake)
    [warning] = set_up(server.url, "t", "fablab", PLANS[:1], "fabcity", True).warnings
    assert "keeps data for 168h" in warning and "30d" in warning
    assert "fabcity" in caplog.text
    [warning] = set_up(server.url, "t", "fablab", [BucketPlan("nope", "inf", "autogen")],
                       "fabcity", True).warnings
    assert "'nope' does not exist" in warning and len(fake.dbrps) == 1
    [warning] = set_up(server.url, "t", "other", PLANS, "fabcity", True).warnings
    assert "organisation 'other' not found" in warning


def test_server_without_v2_api_needs_no_mapping(scripted: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    server = scripted()  # 404 everywhere but /api/v2/write
    caplog.set_level("INFO")
    storage = open_storage(server.url)
    try:
        storage.write(readings(3))
    finally:
        storage.close()
    assert caplog.text.count("no bucket or DBRP mapping is needed or possible") == 1


def test_storage_sets_up_buckets_with_its_retentions(scripted: Any) -> None:
    fake = FakeInfluxDB2({"fabcity": 0})
    server = scripted(api=fake)
    open_storage(server.url, retention_1m="90d", database="city").close()
    assert fake.buckets["fabcity_1m"]["retentionRules"] == [
        {"type": "expire", "everySeconds": 90 * 86_400}]
    assert {(d["database"], d["retention_policy"]) for d in fake.dbrps} == {
        ("city", "autogen"), ("city", "rollup_1m"), ("city", "rollup_1h")}


# -- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "message"), [
    ({"bucket": "b"}, "storage.url"),
    ({"url": "http://x:8086"}, "storage.bucket"),
    ({"url": "http://x:8086", "bucket": "b", "batchsize": 10}, "storage.batchsize"),
    ({"url": "ftp://x", "bucket": "b"}, "storage.url"),
    ({"url": "http://x:8086", "bucket": "b", "batch_size": 0}, "storage.batch_size"),
    ({"url": "http://x:8086", "bucket": "b", "retention_1m": "3 days"}, "storage.retention_1m"),
])
def test_options_errors_name_the_key(options: dict[str, Any], message: str) -> None:
    config = StorageConfig(backend="influxdb", **options)
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_storage_options(config, "hub.toml")


def test_describe_names_server_org_and_bucket_without_the_token(scripted: Any) -> None:
    server = scripted()
    storage = open_storage(server.url)
    try:
        assert storage.describe() == f"influxdb {server.url} org=fablab bucket=fabcity"
        assert "secret" not in storage.describe()
    finally:
        storage.close()
