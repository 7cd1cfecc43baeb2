from fastapi.testclient import TestClient

from fabcity import __version__
from fabcity.errors import StorageUnavailable
from hub.api import create_app
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.hub.api.conftest import T0_MS, Link, rejected


def test_health_ok_when_broker_and_storage_are_fine(client: TestClient, ctx: HubContext,
                                                    ) -> None:
    body = client.get("/api/v1/health").json()
    assert body == {"status": "ok", "version": __version__,
                    "mqtt": {"connected": True, "broker_check": None},
                    "storage": {"status": "ok", "backend": ctx.storage.describe(),
                                "since": None, "dead_letters": 0, "rollups": "ok"},
                    "forwarders": []}


def test_health_says_which_part_failed_and_since_when(ctx: HubContext) -> None:
    ctx.storage_problem = lambda: ("connection refused", T0_MS)
    ctx.dead_letters = lambda: 3
    ctx.rollup_problem = lambda: "connection refused"
    body = TestClient(create_app(ctx)).get("/api/v1/health").json()
    assert body["status"] == "degraded"
    assert body["storage"] == {"status": "unavailable: connection refused",
                               "backend": ctx.storage.describe(),
                               "since": "2026-11-18T00:00:00.000Z", "dead_letters": 3,
                               "rollups": "connection refused"}


def test_health_degraded_when_broker_link_is_down(client: TestClient, link: Link) -> None:
    link.up = False
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["mqtt"] == {"connected": False, "broker_check": None}


class _BrokenStorage(SqliteStorage):
    def health(self) -> str:
        raise StorageUnavailable("database is locked")


def test_health_degraded_when_storage_fails(tmp_path, registry: DeviceRegistry) -> None:
    storage = _BrokenStorage(tmp_path / "broken.db")
    app = create_app(HubContext(storage=storage, registry=registry, mqtt_connected=lambda: True))
    body = TestClient(app).get("/api/v1/health").json()
    assert body["status"] == "degraded"
    assert "database is locked" in body["storage"]["status"]
    storage.close()


def test_health_rejects_unknown_parameter(client: TestClient) -> None:
    message = rejected(client.get("/api/v1/health?verbose=1"), "verbose")
    assert "unknown parameter" in message


def test_health_lists_each_forwarder_with_its_lag(client: TestClient, ctx: HubContext) -> None:
    from hub.forward.base import ForwarderStatus

    ctx.forwarders = lambda: [ForwarderStatus("opensensemap-box", "opensensemap", 290.0,
                                              "2026-11-26T22:00:00.000Z", "retrying: HTTP 503")]
    body = client.get("/api/v1/health").json()
    assert body["forwarders"] == [{"name": "opensensemap-box", "to": "opensensemap",
                                   "lag_s": 290.0, "forwarded_until": "2026-11-26T22:00:00.000Z",
                                   "status": "retrying: HTTP 503"}]
    assert body["status"] == "ok"  # a remote network's outage is not the hub's
