"""``fabcity bridge``: watch and command a microcontroller running fabcity firmware.

``fabcity bridge monitor PORT`` prints every frame as it arrives, with counters of damaged
and lost frames; ``fabcity bridge send PORT COMMAND [VALUE]`` sends one command and prints
the answer.
"""

import argparse
import sys
import time
from typing import Any, TextIO

from fabcity.errors import ConfigError
from firmware_bridge.messages import (
    DEFAULT_IDENTIFY_S,
    MAX_IDENTIFY_S,
    MAX_INTERVAL_MS,
    MIN_IDENTIFY_S,
    MIN_INTERVAL_MS,
    Hello,
)
from firmware_bridge.monitor import run_monitor
from firmware_bridge.session import DEFAULT_BAUDRATE, DeviceSession

__all__ = ["register"]

DEFAULT_STATS_EVERY_S = 10.0

_PORT_HELP = "serial port: a path such as /dev/ttyACM0 or /dev/serial/by-id/usb-…"
_SEND_COMMANDS = {
    "ping": "check the device answers; prints the round trip",
    "hello": "ask the device who it is and which channels it reports",
    "interval": f"set the reporting interval, VALUE in ms ({MIN_INTERVAL_MS}..{MAX_INTERVAL_MS})",
    "identify": f"blink the device's LED, VALUE in seconds ({MIN_IDENTIFY_S}..{MAX_IDENTIFY_S}, "
                f"default {DEFAULT_IDENTIFY_S})",
}


def register(subparsers: Any) -> None:
    """Add ``fabcity bridge`` and its sub-commands."""
    parser = subparsers.add_parser(
        "bridge",
        help="watch and command microcontrollers running fabcity firmware",
        description="Talk to an Arduino, ESP32 or Pico running fabcity firmware over serial "
                    "(protocol: docs/firmware-protocol.md).",
    )
    commands = parser.add_subparsers(title="bridge commands", metavar="COMMAND")
    parser.set_defaults(func=lambda _args: _usage(parser))

    monitor = commands.add_parser(
        "monitor",
        help="show frames live with counters of bad checksums and lost frames",
        description="Print every frame the device sends, decoded (or raw with --raw, or as "
                    "JSON lines with --json), and counters of bad checksums, malformed lines "
                    "and sequence gaps. Control characters from the line are escaped, never "
                    "sent to the terminal. Keeps running across unplug and replug; stop with "
                    "Ctrl-C, --count or --duration-s: the counters are printed at the end.",
    )
    monitor.add_argument("port", metavar="PORT", help=_PORT_HELP)
    output = monitor.add_mutually_exclusive_group()
    output.add_argument("--raw", action="store_true",
                        help="print lines as received instead of decoding them (bytes outside "
                             "printable ASCII are shown as \\xNN)")
    output.add_argument("--json", action="store_true",
                        help="print one JSON object per line for scripts: type 'frame' (seq, "
                             "kind, fields, raw_hex, received, ts), 'lost', 'noise', "
                             "'rejected', 'connected', 'disconnected', 'refused', 'stats', "
                             "and a final 'summary' with every counter and why it ended")
    monitor.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE,
                         help=f"baud rate (default {DEFAULT_BAUDRATE})")
    monitor.add_argument("--count", type=_positive_int, metavar="N",
                         help="stop after N valid frames")
    monitor.add_argument("--duration-s", type=_positive_float, metavar="S",
                         help="stop after S seconds")
    monitor.add_argument("--stats-every-s", type=_positive_float, metavar="S",
                         default=DEFAULT_STATS_EVERY_S,
                         help=f"print the counters every S seconds (default "
                              f"{DEFAULT_STATS_EVERY_S:g}); they are always printed at the end")
    monitor.set_defaults(func=run_monitor)

    send = commands.add_parser(
        "send",
        help="send one command and print the answer",
        description="Wait for the device's HELLO, send one command, print its answer. "
                    "Commands: " + "; ".join(f"{k}: {v}" for k, v in _SEND_COMMANDS.items()),
    )
    send.add_argument("port", metavar="PORT", help=_PORT_HELP)
    send.add_argument("command", metavar="COMMAND", choices=sorted(_SEND_COMMANDS),
                      help="one of: " + ", ".join(sorted(_SEND_COMMANDS)))
    send.add_argument("value", metavar="VALUE", nargs="?",
                      help="interval: milliseconds; identify: seconds")
    send.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE,
                      help=f"baud rate (default {DEFAULT_BAUDRATE})")
    send.add_argument("--timeout-s", type=_positive_float, default=1.0, metavar="S",
                      help="how long to wait for the answer (default 1)")
    send.add_argument("--handshake-timeout-s", type=_positive_float, default=3.0, metavar="S",
                      help="how long to wait for the device's HELLO (default 3; an Arduino "
                           "restarts when the port opens)")
    send.set_defaults(func=run_send)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


# ---- send ----------------------------------------------------------------------------------


def _command_fields(command: str, value: str | None) -> dict[str, str | int]:
    if command == "interval":
        if value is None or not value.isdigit():
            raise ConfigError(f"interval needs VALUE, the reporting interval in ms "
                              f"({MIN_INTERVAL_MS}..{MAX_INTERVAL_MS}), got {value!r}")
        if not MIN_INTERVAL_MS <= int(value) <= MAX_INTERVAL_MS:
            raise ConfigError(f"interval {value} ms out of range "
                              f"{MIN_INTERVAL_MS}..{MAX_INTERVAL_MS}")
        return {"ms": int(value)}
    if command == "identify":
        if value is None:
            return {}
        if not value.isdigit() or not MIN_IDENTIFY_S <= int(value) <= MAX_IDENTIFY_S:
            raise ConfigError(f"identify takes VALUE in seconds ({MIN_IDENTIFY_S}.."
                              f"{MAX_IDENTIFY_S}), got {value!r}")
        return {"s": int(value)}
    if value is not None:
        raise ConfigError(f"{command} takes no VALUE, got {value!r}")
    return {}


def run_send(args: argparse.Namespace) -> int:
    """``fabcity bridge send``."""
    fields = _command_fields(args.command, args.value)
    with DeviceSession(args.port, baudrate=args.baud,
                       handshake_timeout_s=args.handshake_timeout_s) as session:
        hello = session.open()
        assert hello is not None
        started = time.perf_counter()
        answer = session.command(args.command.upper(), fields, timeout_s=args.timeout_s)
        round_trip_ms = (time.perf_counter() - started) * 1000
    out = sys.stdout
    if isinstance(answer, Hello):
        _print_hello(answer, out)
    else:
        extra = " ".join(f"{k}={v}" for k, v in answer.fields.items())
        print(f"ACK from {hello.device} in {round_trip_ms:.1f} ms (device uptime "
              f"{answer.uptime_ms} ms){': ' + extra if extra else ''}", file=out)
    return 0


def _print_hello(hello: Hello, out: TextIO) -> None:
    interval = f", reports every {hello.interval_ms} ms" if hello.interval_ms else ""
    print(f"{hello.device}: firmware {hello.firmware}, protocol {hello.protocol_text}"
          f"{interval}, {len(hello.channels)} channels", file=out)
    for index, channel in enumerate(hello.channels):
        print(f"  {index}: {channel.sensor} {channel.metric} [{channel.unit}]", file=out)
