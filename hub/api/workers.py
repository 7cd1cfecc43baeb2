"""Several API processes on one port: ``fabcity hub api --workers N`` (``[api] workers``).

uvicorn's supervisor binds the port once and starts N worker processes (``spawn``: fresh
interpreters), restarting one that dies. Each worker builds its own ``api`` hub
(:class:`hub.service.HubService`): storage client, registry reader, live feed from the
broker, with its own rate limits and shared-answer cache. The configuration travels to the
workers as the path and command-line overrides in ``FABCITY_HUB_API_PROCESS``, so each
loads it exactly as the parent did (environment overrides included).
"""

import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from hub.config import HubSettings, load_hub_settings

__all__ = ["PROCESS_ENV", "run_api_workers", "worker_app"]

PROCESS_ENV = "FABCITY_HUB_API_PROCESS"
SHUTDOWN_GRACE_S = 5

log = logging.getLogger(__name__)


def run_api_workers(config: Path | None, cli: Mapping[str, tuple[str, Any]],
                    settings: HubSettings) -> int:
    """Serve the API from ``settings.api.workers`` processes until SIGINT/SIGTERM."""
    from uvicorn.supervisors import Multiprocess

    from hub.api.server import HeaderTimeoutProtocol, uvicorn_config
    from hub.service import check_port_free

    api = settings.api
    check_port_free(api.host, api.port)
    os.environ[PROCESS_ENV] = json.dumps(
        {"config": str(config) if config is not None else None,
         "cli": {key: list(value) for key, value in cli.items()}})
    server_config = uvicorn_config(
        f"{__name__}:worker_app", api, factory=True, workers=api.workers,
        http=HeaderTimeoutProtocol, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    log.info("hub API on http://%s:%d (docs at /docs), %d worker processes", api.host,
             api.port, api.workers)
    sock = server_config.bind_socket()
    try:
        Multiprocess(server_config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0


def worker_app() -> FastAPI:
    """The app of one API worker process (uvicorn calls it in the worker)."""
    from hub.api.app import create_app
    from hub.api.server import HeaderTimeoutProtocol
    from hub.service import HubService

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = json.loads(os.environ[PROCESS_ENV])
    cli = {key: (option, value) for key, (option, value) in spec["cli"].items()}
    settings = load_hub_settings(Path(spec["config"]) if spec["config"] else None, cli)
    HeaderTimeoutProtocol.header_timeout_s = settings.api.header_timeout_s
    service = HubService(settings, role="api")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.live.close()
            service.stop()

    return create_app(service.context, lifespan=lifespan)
