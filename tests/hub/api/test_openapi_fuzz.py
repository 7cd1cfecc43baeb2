"""Property-based run of every documented operation (schemathesis over ``/openapi.json``):
no answer is a server error, and every answer matches the status codes, media types and
schemas the document promises. SQLite only, and a bounded number of examples: it stays fast."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.api import create_app
from hub.config import SiteConfig
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.hub.api.conftest import T0_MS, announce, reading

EXAMPLES_PER_OPERATION = 40
# Server-sent events never end: a fuzzer waiting for the body would hang.
ENDLESS_PATHS = r"^/api/v1/stream"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def api_schema(tmp_path: Path) -> Iterator[BaseSchema]:
    storage = SqliteStorage(tmp_path / "fuzz.db", synchronous="normal")
    registry = DeviceRegistry(tmp_path / "registry.db")
    storage.write([reading(metric, float(i % 17), T0_MS + i * 60_000, site=site, device=device)
                   for i in range(200)
                   for site, device, metric in (("fablab-bcn", "pi-laser", "power"),
                                                ("street-12", "pi-air", "pm2_5"))])
    announce(registry, "fablab-bcn", "pi-laser", "online", T0_MS, location={"lat": 41.4,
                                                                            "lon": 2.2})
    announce(registry, "street-12", "pi-air", "offline", T0_MS)
    ctx = HubContext(storage=storage, registry=registry,
                     sites=[SiteConfig(id="fablab-bcn", name="Fab Lab", lat=41.39, lon=2.19)])
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(ctx)).exclude(
        path_regex=ENDLESS_PATHS)
    storage.close()
    registry.close()


def test_no_server_error_and_no_answer_outside_the_schema(api_schema: BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        run()
