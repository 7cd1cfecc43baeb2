"""``fabcity hub``: run the hub (all in one, or its ingest and API roles apart); export and
import its readings."""

import argparse
import re
from pathlib import Path
from typing import Any

from hub.config import load_hub_settings
from hub.deadletters_cli import register_dead_letters
from hub.security_cli import register_security

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``hub`` and its sub-commands to the ``fabcity`` parser."""
    hub = subparsers.add_parser("hub", help="run the hub (ingest, storage, API)",
                                description="The hub: MQTT ingest, storage and the HTTP API.")
    commands = hub.add_subparsers(title="commands", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve", help="ingest readings and serve the API until stopped (one process)",
        description="Everything in one process: MQTT ingest (or the embedded broker when no "
                    "[mqtt] url is set), storage, rollups, forwarders, the HTTP API and the "
                    "citizen page. To scale out, run the roles apart: fabcity hub ingest and "
                    "fabcity hub api (docs/scaling.md).")
    serve.add_argument("--config", "-c", type=Path, help="hub.toml (default: embedded defaults)")
    serve.add_argument("--host", help="override [api] host")
    serve.add_argument("--port", type=int, help="override [api] port")
    serve.set_defaults(func=_serve)
    ingest = commands.add_parser(
        "ingest", help="only ingest readings (MQTT -> storage); several may share the load",
        description="MQTT ingest only: broker -> storage, plus the rollups and forwarders "
                    "(run by one ingest process of the hub at a time). No HTTP API. Several "
                    "workers share the readings through an MQTT v5 shared subscription when "
                    "[mqtt] shared_group is set; each needs its own --worker-id. Needs an "
                    "external broker ([mqtt] url).")
    ingest.add_argument("--config", "-c", type=Path, help="hub.toml")
    ingest.add_argument(
        "--worker-id", metavar="ID",
        help="this worker's stable id ([A-Za-z0-9_-], e.g. 0, 1, 2): MQTT client id "
             "<[mqtt] client_id>-<ID>, whose persistent session a restart resumes; default: "
             "$FABCITY_WORKER_ID, else the client id as configured (one worker)")
    ingest.add_argument(
        "--retire", action="store_true",
        help="take this worker out of the shared group for good: store what its session "
             "holds, unsubscribe, end the session, exit (scaling down; docs/scaling.md)")
    ingest.set_defaults(func=_ingest)
    api = commands.add_parser(
        "api", help="only serve the HTTP API and page (several worker processes)",
        description="The HTTP API, the citizen page and the live stream, without ingest: "
                    "readings come from the storage the ingest processes write, device "
                    "state from the registry they keep, the live stream straight from the "
                    "broker ([mqtt] url). Several processes share the port (--workers).")
    api.add_argument("--config", "-c", type=Path, help="hub.toml")
    api.add_argument("--host", help="override [api] host")
    api.add_argument("--port", type=int, help="override [api] port")
    api.add_argument("--workers", type=int, metavar="N",
                     help="override [api] workers: API processes sharing the port")
    api.set_defaults(func=_api)
    _register_transfer(commands)
    register_dead_letters(commands)
    register_security(commands)


def _register_transfer(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="copy readings to another storage, a CSV or a line-protocol file",
        description="Copy the raw readings of the configured storage, window by window, to "
                    "another storage (--to-config) or a file; resumable with --resume.")
    # "--start -30d": argparse takes a value starting with "-" for an option unless it looks
    # like a negative number; widen what counts as one to the relative durations.
    export._negative_number_matcher = re.compile(r"^-[0-9]+([smhdw]|\.[0-9]+)?$")
    export.add_argument("--config", "-c", type=Path, help="hub.toml of the source storage")
    export.add_argument("--start", help="RFC 3339 or relative (e.g. -30d); default: the oldest "
                                        "reading")
    export.add_argument("--end", help="RFC 3339, relative or now (exclusive); default: after the "
                                      "newest reading")
    for name in ("site", "device", "metric"):
        export.add_argument(f"--{name}", help=f"only this {name}")
    to = export.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-config", type=Path, metavar="HUB_TOML",
                    help="write to the [storage] of this other hub.toml")
    to.add_argument("--csv", metavar="FILE", help="write CSV (the API's columns); - for stdout")
    to.add_argument("--line-protocol", metavar="FILE",
                    help="write InfluxDB line protocol (ms timestamps); - for stdout")
    imp = commands.add_parser(
        "import", help="load readings from a CSV or line-protocol file",
        description="Validate every row of a file and write the readings to the configured "
                    "storage; bad rows are reported by line and skipped (exit status 1).")
    imp.add_argument("--config", "-c", type=Path, help="hub.toml of the storage to fill")
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", metavar="FILE", help="a CSV as export writes it; - for stdin")
    source.add_argument("--line-protocol", metavar="FILE",
                        help="InfluxDB line protocol, ms timestamps; - for stdin")
    for sub in (export, imp):
        sub.add_argument("--resume", action="store_true",
                         help="continue from the checkpoint of an interrupted run")
        sub.add_argument("--checkpoint", type=Path, metavar="PATH",
                         help="checkpoint file (default: <target or file>.checkpoint)")
        sub.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    export.set_defaults(func=_export)
    imp.set_defaults(func=_import)


def _api_overrides(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    options = [("api.host", "--host", args.host), ("api.port", "--port", args.port),
               ("api.workers", "--workers", getattr(args, "workers", None))]
    return {key: (option, value) for key, option, value in options if value is not None}


def _serve(args: argparse.Namespace) -> int:
    from hub.service import HubService

    service = HubService(load_hub_settings(args.config, _api_overrides(args)))
    service.serve()
    return service.exit_code


def _ingest(args: argparse.Namespace) -> int:
    from hub.service import HubService
    from hub.workers import resolve_worker_id

    worker_id = resolve_worker_id(args.worker_id)
    service = HubService(load_hub_settings(args.config), role="ingest", worker_id=worker_id)
    service.run_ingest(retire=args.retire)
    return service.exit_code


def _api(args: argparse.Namespace) -> int:
    cli = _api_overrides(args)
    settings = load_hub_settings(args.config, cli)
    if settings.api.workers > 1:
        from hub.api.workers import run_api_workers

        return run_api_workers(args.config, cli, settings)
    from hub.service import HubService

    service = HubService(settings, role="api")
    service.serve()
    return service.exit_code


def _export(args: argparse.Namespace) -> int:
    from hub.transfer import run_export

    return run_export(config=args.config, to_config=args.to_config, csv=args.csv,
                      line_protocol=args.line_protocol, start=args.start, end=args.end,
                      site=args.site, device=args.device, metric=args.metric,
                      resume=args.resume, checkpoint=args.checkpoint, quiet=args.quiet)


def _import(args: argparse.Namespace) -> int:
    from hub.transfer import run_import

    return run_import(config=args.config, csv=args.csv, line_protocol=args.line_protocol,
                      resume=args.resume, checkpoint=args.checkpoint, quiet=args.quiet)
