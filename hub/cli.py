"""``fabcity hub``: run the hub."""

import argparse
from pathlib import Path
from typing import Any

from hub.config import load_hub_settings

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``hub`` and its sub-commands to the ``fabcity`` parser."""
    hub = subparsers.add_parser("hub", help="run the hub (ingest, storage, API)",
                                description="The hub: MQTT ingest, storage and the HTTP API.")
    commands = hub.add_subparsers(title="commands", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="ingest readings and serve the API until stopped")
    serve.add_argument("--config", "-c", type=Path, help="hub.toml (default: embedded defaults)")
    serve.add_argument("--host", help="override [api] host")
    serve.add_argument("--port", type=int, help="override [api] port")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from hub.service import HubService

    cli = {key: (option, value) for key, option, value in (
        ("api.host", "--host", args.host), ("api.port", "--port", args.port)) if value is not None}
    HubService(load_hub_settings(args.config, cli)).serve()
    return 0
