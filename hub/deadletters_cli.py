"""``fabcity hub dead-letters list|replay``: see and retry the readings storage refused."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register_dead_letters"]


def register_dead_letters(commands: Any) -> None:
    """Add ``dead-letters`` and its two commands under ``fabcity hub``."""
    letters = commands.add_parser(
        "dead-letters", help="show or replay readings the storage refused for good",
        description="Readings the storage back-end refused for good (e.g. older than an "
                    "InfluxDB retention policy) are kept in the hub's state file with the "
                    "reason, instead of being lost or blocking ingest.")
    actions = letters.add_subparsers(title="commands", metavar="COMMAND", required=True)
    show = actions.add_parser("list", help="print the dead letters, oldest first")
    show.add_argument("--config", "-c", type=Path, help="hub.toml (default: embedded defaults)")
    show.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(func=_list)
    replay = actions.add_parser(
        "replay", help="write them to storage again; those stored leave the list",
        description="Try every dead letter again, e.g. after lengthening a retention policy. "
                    "Readings stored leave the list; readings refused again stay, with the "
                    "new reason.")
    replay.add_argument("--config", "-c", type=Path, help="hub.toml (default: embedded defaults)")
    replay.set_defaults(func=_replay)


def _open(args: argparse.Namespace) -> Any:
    from hub.config import load_hub_settings
    from hub.deadletters import DeadLetters

    settings = load_hub_settings(args.config)
    return settings, DeadLetters(settings.resolved_state_path())


def _list(args: argparse.Namespace) -> int:
    from fabcity.reading import format_ts

    _settings, letters = _open(args)
    total = letters.count()
    for letter in letters.entries(args.limit):
        r = letter.reading
        if args.json:
            print(json.dumps({"id": letter.id, "at": format_ts(letter.at_ms),
                              "reason": letter.reason, "site": r.site, "device": r.device,
                              "sensor": r.sensor, "metric": r.metric, "ts": format_ts(r.ts_ms),
                              "value": r.value, "unit": r.unit, "flags": list(r.flags)}))
        else:
            print(f"{letter.id:>6}  {format_ts(r.ts_ms)}  {r.site}/{r.device}/{r.sensor}/"
                  f"{r.metric} = {r.value!r} {r.unit or ''}  [{letter.reason}]")
    if not args.json:
        shown = min(total, args.limit)
        print(f"{total} dead letter(s)" + (f", {shown} shown" if shown < total else ""),
              file=sys.stderr)
    letters.close()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from hub.storage.base import storage_class

    settings, letters = _open(args)
    storage = storage_class(settings.storage.backend).from_options(settings.storage.options())
    try:
        stored, refused = letters.replay(storage)
    finally:
        storage.close()
        letters.close()
    print(f"replayed: {stored} stored, {refused} refused again (still listed)")
    return 0 if refused == 0 else 1
