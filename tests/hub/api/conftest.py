"""Fixtures of API tests: a real storage of every back-end (SQLite, and InfluxDB 1.x and 2.x
against their real servers) and a device registry behind a TestClient."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fabcity.device import DeviceMeta, Status
from fabcity.reading import Reading
from hub.api import create_app
from hub.context import HubContext
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import Storage
from tests.hub.storage.conftest import BACKENDS, open_backend

T0_MS = 1_794_960_000_000  # 2026-11-18T00:00:00Z: bucket boundaries fall on it


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """The same API test against each back-end: same answers expected."""
    s = open_backend(request.param, request, tmp_path)()
    yield s
    s.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DeviceRegistry]:
    r = DeviceRegistry(tmp_path / "registry.db")
    yield r
    r.close()


class Link:
    """A switchable MQTT probe."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> bool:
        return self.up


@pytest.fixture
def link() -> Link:
    return Link()


@pytest.fixture
def ctx(storage: Storage, registry: DeviceRegistry, link: Link) -> HubContext:
    return HubContext(storage=storage, registry=registry, metrics=HubMetrics(),
                      mqtt_connected=link)


@pytest.fixture
def client(ctx: HubContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as c:
        yield c


def reading(metric: str, value: float, ts_ms: int, *, site: str = "fablab-bcn",
            device: str = "pi-laser", sensor: str = "air", unit: str | None = None) -> Reading:
    return Reading(site, device, sensor, metric, value, ts_ms, unit)


def announce(registry: DeviceRegistry, site: str, device: str, state: str, at_ms: int,
             **meta: object) -> None:
    """Feed the registry the retained status (and meta, if given) of a device."""
    registry.set_status(site, device, Status(state=state), at_ms)  # type: ignore[arg-type]
    if meta:
        registry.set_meta(site, device, DeviceMeta.model_validate(
            {"site": site, "device": device, **meta}))


def rejected(response: object, parameter: str) -> str:
    """Assert a 422 naming ``parameter``; return its message."""
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    names = [e["parameter"] for e in body["errors"]]
    assert names == [parameter], body
    assert parameter in body["detail"]
    message: str = body["errors"][0]["message"]
    return message


def readings_pages(client: TestClient, params: dict[str, Any]) -> list[
        tuple[int, dict[str, str], bytes]]:
    """Every page of a ``/api/v1/readings`` answer (following ``next``): status, headers and
    body of each."""
    out = []
    response = client.get("/api/v1/readings", params=params)
    while True:
        out.append((response.status_code, dict(response.headers), response.content))
        nxt = response.json().get("next") if response.status_code == 200 else None
        if nxt is None:
            return out
        response = client.get("/api/v1/readings", params={**params, "cursor": nxt})
