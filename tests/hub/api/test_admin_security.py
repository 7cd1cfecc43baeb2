"""The admin API answers only to valid keys of the right scope and changes nothing otherwise;
anonymous reads are rate limited per client address; request bodies are capped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.apikeys import ApiKeys
from hub.broker_files import check_mosquitto_hash
from hub.config import ApiConfig, BrokerFilesConfig, HubMqttConfig, HubSettings
from hub.context import HubContext
from hub.provisioning import Provisioner
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage

DEVICES = "/api/v1/admin/devices"


class Hub:
    """An app over SQLite with keys of each kind and one provisioned device."""

    def __init__(self, tmp: Path, limits: ApiConfig) -> None:
        self.settings = HubSettings(
            state_dir=tmp, mqtt=HubMqttConfig(username="hub", password="hub-pw"),
            broker=BrokerFilesConfig(password_file=tmp / "fabcity.passwd",
                                     acl_file=tmp / "fabcity.acl"))
        self.keys = ApiKeys(self.settings.resolved_state_path())
        self.provisioner = Provisioner(self.settings)
        self.provisioner.add("lab", "pi-a")
        self.storage = SqliteStorage(tmp / "hub.db")
        self.registry = DeviceRegistry(tmp / "registry.db")
        extra: dict[str, Any] = {"api": limits}  # [api] limits, read by the middleware
        self.ctx = HubContext(storage=self.storage, registry=self.registry,
                              api_keys=self.keys, provisioner=self.provisioner, **extra)
        self.app: FastAPI = create_app(self.ctx)
        self.admin = self.keys.create("ops", "admin")[1]
        self.read = self.keys.create("climate group", "read")[1]
        revoked, self.revoked = self.keys.create("old laptop", "admin")
        self.keys.revoke(revoked.id)

    def files(self) -> tuple[str, str]:
        broker = self.settings.broker
        assert broker.password_file and broker.acl_file
        return broker.password_file.read_text(), broker.acl_file.read_text()

    def close(self) -> None:
        for part in (self.keys, self.provisioner, self.storage, self.registry):
            part.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path, ApiConfig(rate_limit_per_s=0))
    yield h
    h.close()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_admin_changes_need_an_admin_key_and_change_nothing_otherwise(hub: Hub) -> None:
    before = hub.files()
    denied = [({}, 401), (_bearer("fck_0000_not-a-key"), 401), ({"Authorization": "Basic x"}, 401),
              (_bearer(hub.read), 403), (_bearer(hub.revoked), 401)]
    with TestClient(hub.app) as client:
        for headers, status in denied:
            added = client.post(DEVICES, json={"site": "lab", "device": "pi-b"}, headers=headers)
            revoked = client.delete(f"{DEVICES}/lab/pi-a", headers=headers)
            assert (added.status_code, revoked.status_code) == (status, status), headers
            if status == 401:
                assert added.headers["www-authenticate"].startswith("Bearer")
    assert [(d.site, d.device) for d in hub.provisioner.devices()] == [("lab", "pi-a")]
    assert hub.files() == before


def test_admin_key_adds_and_revokes_devices(hub: Hub) -> None:
    with TestClient(hub.app) as client:
        added = client.post(DEVICES, json={"site": "city", "device": "pi-a"},
                            headers=_bearer(hub.admin))
        assert added.status_code == 201, added.text
        body = added.json()
        assert body["username"] == "city.pi-a"
        passwd, acl = hub.files()
        (line,) = [x for x in passwd.splitlines() if x.startswith("city.pi-a:")]
        assert check_mosquitto_hash(body["password"], line.split(":", 1)[1])
        assert "topic write fabcity/v1/city/pi-a/#" in acl
        again = client.post(DEVICES, json={"site": "city", "device": "pi-a"},
                            headers=_bearer(hub.admin))
        assert again.status_code == 409
        listed = client.get(DEVICES, headers=_bearer(hub.read))
        assert [d["username"] for d in listed.json()] == ["city.pi-a", "lab.pi-a"]
        assert "password" not in listed.text
        assert client.get(DEVICES).status_code == 401
        gone = client.delete(f"{DEVICES}/city/pi-a", headers=_bearer(hub.admin))
        assert gone.status_code == 204
        assert "city.pi-a" not in "".join(hub.files())
        assert client.delete(f"{DEVICES}/city/pi-a",
                             headers=_bearer(hub.admin)).status_code == 404


def test_bad_device_name_is_refused_naming_it(hub: Hub) -> None:
    with TestClient(hub.app) as client:
        answer = client.post(DEVICES, json={"site": "Lab!", "device": "pi-b"},
                             headers=_bearer(hub.admin))
    assert answer.status_code == 422 and "site" in answer.text


def test_request_body_over_the_limit_is_refused(hub: Hub) -> None:
    with TestClient(hub.app) as client:
        answer = client.post(DEVICES, content=b"{" + b" " * 70_000 + b"}",
                             headers={**_bearer(hub.admin), "content-type": "application/json"})
    assert answer.status_code == 413
    assert [d.device for d in hub.provisioner.devices()] == ["pi-a"]


async def _get(app: FastAPI, path: str, client: str,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """One request straight into the ASGI app (no HTTP client: 10,000 of them take ~1 s)."""
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": raw, "client": (client, 40000),
             "server": ("127.0.0.1", 8000)}
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}

    await app(scope, receive, send)
    return answer["status"], answer["headers"]


def test_anonymous_flood_meets_the_rate_limit_while_others_are_served(tmp_path: Path) -> None:
    hub = Hub(tmp_path, ApiConfig(rate_limit_per_s=5, rate_limit_burst=50))

    async def run() -> None:
        started = time.monotonic()
        statuses = [await _get(hub.app, "/api/v1/sites", "203.0.113.7")
                    for _ in range(10_000)]
        elapsed_s = time.monotonic() - started
        codes = [status for status, _ in statuses]
        assert codes[:50] == [200] * 50
        # The burst, then at most the refills of 5 per second while the loop ran.
        assert codes.count(200) <= 50 + 5 * elapsed_s + 1
        assert codes.count(429) + codes.count(200) == 10_000
        limited = next(headers for status, headers in statuses if status == 429)
        assert int(limited["retry-after"]) >= 1
        assert (await _get(hub.app, "/api/v1/sites", "198.51.100.2"))[0] == 200
        keyed = await _get(hub.app, "/api/v1/sites", "203.0.113.7", _bearer(hub.read))
        assert keyed[0] == 200
        assert (await _get(hub.app, "/", "203.0.113.7"))[0] == 200  # the page is not limited

    try:
        asyncio.run(run())
    finally:
        hub.close()
