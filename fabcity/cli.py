"""The ``fabcity`` command: sub-commands come from the ``fabcity.commands`` entry points.

Each entry point is a ``register(subparsers)`` function that adds its parser and sets
``func`` on it; a role whose extra is not installed is listed with the ``pip install`` hint.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from fabcity import __version__
from fabcity.errors import FabcityError

__all__ = ["main"]

_EXTRA_HINT = {"edge": "fabcity[edge]", "hub": "fabcity[hub]", "demo": "fabcity[edge,hub]"}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every installed sub-command."""
    parser = argparse.ArgumentParser(
        prog="fabcity",
        description="Edge agents and hub for fablab and city sensors.",
    )
    parser.add_argument("--version", action="version", version=f"fabcity {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for ep in sorted(entry_points(group="fabcity.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:
            hint = _EXTRA_HINT.get(ep.name, "fabcity[edge,hub]")
            sub = subparsers.add_parser(ep.name, help=f"(unavailable: pip install '{hint}')")
            sub.set_defaults(func=_unavailable(ep.name, hint, exc))
            continue
        register(subparsers)
    return parser


def _unavailable(name: str, hint: str, exc: ImportError):  # type: ignore[no-untyped-def]
    def run(_args: argparse.Namespace) -> int:
        print(f"fabcity {name}: needs {exc.name or 'a missing package'}; "
              f"install it with: pip install '{hint}'", file=sys.stderr)
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fabcity`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except FabcityError as exc:
        print(f"fabcity: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
