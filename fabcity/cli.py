"""The ``fabcity`` command: sub-commands come from the ``fabcity.commands`` entry points.

Each entry point is a ``register(subparsers)`` function that adds its parser and sets
``func`` on it; a role whose extra is not installed is listed with the ``pip install`` hint.
"""

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from fabcity import __version__
from fabcity.errors import FabcityError

__all__ = ["main"]

_EXTRA_HINT = {"edge": "fabcity[edge]", "hub": "fabcity[hub]", "demo": "fabcity[edge,hub]"}


def _requested(argv: Sequence[str], names: set[str]) -> str | None:
    """The sub-command named on the command line, if it is an installed one."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in names else None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The top-level parser: only the requested sub-command is imported (an edge agent on a
    Pi never loads the hub's web stack); every one when none is named, for ``--help``."""
    parser = argparse.ArgumentParser(
        prog="fabcity",
        description="Edge agents and hub for fablab and city sensors.",
    )
    parser.add_argument("--version", action="version", version=f"fabcity {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands = sorted(entry_points(group="fabcity.commands"), key=lambda e: e.name)
    wanted = _requested(argv, {ep.name for ep in commands})
    for ep in commands:
        if wanted is not None and ep.name != wanted:
            subparsers.add_parser(ep.name, help=argparse.SUPPRESS)
            continue
        try:
            register = ep.load()
        except ImportError as exc:
            hint = _EXTRA_HINT.get(ep.name, "fabcity[edge,hub]")
            sub = subparsers.add_parser(ep.name, help=f"(unavailable: pip install '{hint}')")
            sub.set_defaults(func=_unavailable(ep.name, hint, exc))
            continue
        register(subparsers)
    return parser


def _deepest(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The sub-command parser that ``argv`` names (``fabcity edge check`` -> check's)."""
    for word in argv:
        if word.startswith("-"):
            continue
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        child = actions[0].choices.get(word) if actions else None
        if child is None:
            break
        parser = child
    return parser


def _unavailable(name: str, hint: str, exc: ImportError):  # type: ignore[no-untyped-def]
    def run(_args: argparse.Namespace) -> int:
        print(f"fabcity {name}: needs {exc.name or 'a missing package'}; "
              f"install it with: pip install '{hint}'", file=sys.stderr)
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fabcity`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # say it with the usage of the command that was meant, not the top level's
        _deepest(parser, argv).error(f"unrecognized arguments: {' '.join(unknown)}")
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
    except BrokenPipeError:  # `fabcity … | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
