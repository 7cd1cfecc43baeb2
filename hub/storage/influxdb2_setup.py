"""Start-up checks of the ``influxdb`` back-end over the InfluxDB 2.x management API.

On a server with the v2 API: find the organisation and the buckets, create the rollup
buckets when missing (with ``retention_1m`` / ``retention_1h``), warn when a bucket's
retention differs from the configured one, and map each bucket to a database and retention
policy (DBRP) so InfluxQL over ``/query`` can read it. InfluxDB 3.x, VictoriaMetrics and
InfluxDB 1.x have no such API (404): nothing to set up there, said once at INFO.

Everything here is best effort: a failure is logged with what to check, never raised, so
raw writes (which report their own errors) are never blocked by it.
"""

import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from hub.storage.base import retention_ms

__all__ = ["BucketPlan", "SetupResult", "set_up"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BucketPlan:
    """A bucket the back-end uses, the retention it should have and its InfluxQL mapping."""

    name: str
    retention: str  # "90d", "inf"
    retention_policy: str
    default: bool = False  # the database's default retention policy (the raw bucket)
    create: bool = False  # created when missing (rollup buckets)


@dataclass
class SetupResult:
    """What start-up found: ``v2_api`` False means the server has no management API."""

    v2_api: bool = True
    warnings: list[str] = field(default_factory=list)
    created_buckets: list[str] = field(default_factory=list)
    created_dbrps: list[str] = field(default_factory=list)


class _Http:
    """Tiny JSON client for the management API (token auth)."""

    def __init__(self, url: str, token: str, timeout_s: float, verify_ssl: bool) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.timeout_s = timeout_s
        # Only when the operator set verify_ssl = false.
        self.context = None if verify_ssl else ssl._create_unverified_context()  # noqa: S323

    def call(self, method: str, path: str, params: dict[str, str] | None = None,
             body: object = None) -> tuple[int, Any]:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        # The configured http(s) server of the back-end (validated in its options).
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s,  # noqa: S310
                                        context=self.context) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:
            return status, {"message": raw.decode(errors="replace")[:200]}


def _message(answer: Any) -> str:
    return str(answer.get("message", answer)) if isinstance(answer, dict) else str(answer)


def _retention_of(bucket: dict[str, Any]) -> int | None:
    """A bucket's retention in ms (``None``: forever), from its ``retentionRules``."""
    for rule in bucket.get("retentionRules") or []:
        if rule.get("type", "expire") == "expire" and rule.get("everySeconds"):
            return int(rule["everySeconds"]) * 1000
    return None


def set_up(url: str, token: str, org: str, buckets: list[BucketPlan], database: str,
           create_dbrp: bool, timeout_s: float = 10.0, verify_ssl: bool = True) -> SetupResult:
    """Check and prepare ``buckets`` on the server at ``url``; never raises on server
    answers (connection errors propagate: the caller decides when to try again)."""
    result = SetupResult()
    _set_up(_Http(url, token, timeout_s, verify_ssl), org, buckets, database, create_dbrp,
            result)
    for warning in result.warnings:
        log.warning("influxdb: %s", warning)
    return result


def _set_up(http: _Http, org: str, buckets: list[BucketPlan], database: str,
            create_dbrp: bool, result: SetupResult) -> None:
    warnings = result.warnings
    status, answer = http.call("GET", "/api/v2/orgs", {"org": org} if org else None)
    if status in (400, 404, 405) and "organization" not in _message(answer).lower():
        result.v2_api = False
        log.info("%s has no InfluxDB 2.x management API (HTTP %d): no bucket or DBRP mapping "
                 "is needed or possible there (InfluxDB 3.x, 1.x, VictoriaMetrics)",
                 http.url, status)
        return
    if status in (401, 403):
        warnings.append(f"the token was refused (HTTP {status}) reading organisations: check "
                        "`token` and that it may read the org and its buckets")
        return
    orgs = answer.get("orgs") if isinstance(answer, dict) else None
    if status != 200 or not orgs:
        warnings.append(f"organisation {org!r} not found (HTTP {status}: {_message(answer)}): "
                        "check `org`")
        return
    org_id = str(orgs[0]["id"])

    for plan in buckets:
        bucket_id = _ensure_bucket(http, org_id, plan, result)
        if bucket_id is not None and create_dbrp:
            _ensure_dbrp(http, org_id, bucket_id, plan, database, result)


def _ensure_bucket(http: _Http, org_id: str, plan: BucketPlan,
                   result: SetupResult) -> str | None:
    status, answer = http.call("GET", "/api/v2/buckets", {"orgID": org_id, "name": plan.name})
    found = answer.get("buckets") if isinstance(answer, dict) and status == 200 else None
    wanted_ms = retention_ms(plan.retention)
    if found:
        bucket = found[0]
        actual_ms = _retention_of(bucket)
        if actual_ms != wanted_ms:
            actual = "inf" if actual_ms is None else f"{actual_ms // 3_600_000}h"
            result.warnings.append(
                f"bucket {plan.name!r} keeps data for {actual}, the configuration says "
                f"{plan.retention}: the bucket's own retention applies (change it on the server)")
        return str(bucket["id"])
    if status not in (200, 404):
        result.warnings.append(f"cannot list bucket {plan.name!r} (HTTP {status}: "
                               f"{_message(answer)})")
        return None
    if not plan.create:
        result.warnings.append(f"bucket {plan.name!r} does not exist: create it (with retention "
                               f"{plan.retention}) before the hub writes")
        return None
    rules = [] if wanted_ms is None else [{"type": "expire", "everySeconds": wanted_ms // 1000}]
    status, answer = http.call("POST", "/api/v2/buckets", body={
        "orgID": org_id, "name": plan.name, "retentionRules": rules,
        "description": "fabcity rollups"})
    if status != 201:
        result.warnings.append(f"cannot create bucket {plan.name!r} (HTTP {status}: "
                               f"{_message(answer)}): create it, or give the token write "
                               "access to buckets")
        return None
    result.created_buckets.append(plan.name)
    log.info("influxdb: created bucket %r (retention %s)", plan.name, plan.retention)
    return str(answer["id"])


def _ensure_dbrp(http: _Http, org_id: str, bucket_id: str, plan: BucketPlan, database: str,
                 result: SetupResult) -> None:
    status, answer = http.call("GET", "/api/v2/dbrps", {"orgID": org_id, "bucketID": bucket_id})
    if status != 200:
        result.warnings.append(f"cannot list DBRP mappings of bucket {plan.name!r} (HTTP "
                               f"{status}: {_message(answer)})")
        return
    for mapping in answer.get("content") or []:
        if mapping.get("database") == database and \
                mapping.get("retention_policy") == plan.retention_policy:
            return
    status, answer = http.call("POST", "/api/v2/dbrps", body={
        "orgID": org_id, "bucketID": bucket_id, "database": database,
        "retention_policy": plan.retention_policy, "default": plan.default})
    if status not in (200, 201):
        result.warnings.append(f"cannot map bucket {plan.name!r} to {database}/"
                               f"{plan.retention_policy} (HTTP {status}: {_message(answer)}): "
                               "create the DBRP mapping (`influx v1 dbrp create`)")
        return
    result.created_dbrps.append(f"{database}/{plan.retention_policy}")
    log.info("influxdb: mapped bucket %r to database %r, retention policy %r", plan.name,
             database, plan.retention_policy)
