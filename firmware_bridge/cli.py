"""``fabcity bridge``: watch and command a microcontroller running fabcity firmware.

``fabcity bridge monitor PORT`` prints every frame as it arrives, with counters of damaged
and lost frames; ``fabcity bridge send PORT COMMAND [VALUE]`` sends one command and prints
the answer.
"""

import argparse
import queue
import sys
import time
from typing import Any, TextIO

from fabcity.errors import ConfigError
from fabcity.reading import format_ts
from firmware_bridge.frame import Rejected
from firmware_bridge.messages import (
    MAX_INTERVAL_MS,
    MIN_INTERVAL_MS,
    Ack,
    DeviceError,
    Hello,
    Readings,
)
from firmware_bridge.session import (
    DEFAULT_BAUDRATE,
    Connected,
    DeviceSession,
    Disconnected,
    LinkEvent,
    Received,
    Refused,
)

__all__ = ["register"]

DEFAULT_STATS_EVERY_S = 10.0
EVENT_POLL_S = 0.2
MAX_IDENTIFY_S = 3600

_PORT_HELP = "serial port: a path such as /dev/ttyACM0 or /dev/serial/by-id/usb-…"
_SEND_COMMANDS = {
    "ping": "check the device answers; prints the round trip",
    "hello": "ask the device who it is and which channels it reports",
    "interval": f"set the reporting interval, VALUE in ms ({MIN_INTERVAL_MS}..{MAX_INTERVAL_MS})",
    "identify": "blink the device's LED, VALUE in seconds (default 5)",
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
        description="Print every frame the device sends, decoded (or raw with --raw), and "
                    "counters of bad checksums, malformed lines and sequence gaps. Keeps "
                    "running across unplug and replug; stop with Ctrl-C.",
    )
    monitor.add_argument("port", metavar="PORT", help=_PORT_HELP)
    monitor.add_argument("--raw", action="store_true",
                         help="print lines as received instead of decoding them")
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
        if not value.isdigit() or not 1 <= int(value) <= MAX_IDENTIFY_S:
            raise ConfigError(f"identify takes VALUE in seconds (1..{MAX_IDENTIFY_S}), "
                              f"got {value!r}")
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


# ---- monitor -------------------------------------------------------------------------------


def run_monitor(args: argparse.Namespace) -> int:
    """``fabcity bridge monitor``."""
    events: queue.Queue[LinkEvent] = queue.Queue()
    session = DeviceSession(args.port, baudrate=args.baud, on_event=events.put)
    session.open(wait_for_hello=False)
    out = sys.stdout
    print(f"-- monitoring {args.port} at {args.baud} baud; Ctrl-C to stop", file=out, flush=True)
    view = _MonitorView(out, raw=args.raw)
    started = last_stats = time.monotonic()
    status = 0
    try:
        while True:
            now = time.monotonic()
            if args.duration_s is not None and now - started >= args.duration_s:
                break
            if args.count is not None and view.frames >= args.count:
                break
            if now - last_stats >= args.stats_every_s:
                print(f"-- {session.stats.summary()}", file=out, flush=True)
                last_stats = now
            try:
                event = events.get(timeout=EVENT_POLL_S)
            except queue.Empty:
                continue
            if isinstance(event, Refused):
                print(f"fabcity: error: {event.error}", file=sys.stderr)
                status = 2
                break
            view.show(event, session.stats.lost_frames)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
        print(f"-- {session.stats.summary()}", file=out, flush=True)
    return status


class _MonitorView:
    """Formats link events, one line each."""

    def __init__(self, out: TextIO, *, raw: bool) -> None:
        self.out = out
        self.raw = raw
        self.frames = 0
        self._lost = 0

    def show(self, event: LinkEvent, lost_frames: int) -> None:
        if lost_frames > self._lost:
            self._line(f"!! {lost_frames - self._lost} frame(s) lost (sequence gap)")
            self._lost = lost_frames
        if isinstance(event, Received):
            self.frames += 1
            if self.raw:
                self._line(event.frame.raw.decode("ascii"))
            else:
                self._line(f"{_clock(event.received_ms)} #{event.frame.seq:<5} "
                           f"{event.frame.kind:<5} {_describe(event)}")
        elif isinstance(event, Rejected):
            text = event.raw.decode("ascii", "backslashreplace").rstrip("\r")
            if self.raw:
                self._line(f"{text}    <- {event.reason}" if event.reason != "noise" else text)
            else:
                detail = f" ({event.detail})" if event.detail else ""
                self._line(f"!! {event.reason}{detail}: {text}")
        elif isinstance(event, Connected):
            self._line(f"-- connected: {event.hello.device} firmware {event.hello.firmware}, "
                       f"protocol {event.hello.protocol_text}")
        elif isinstance(event, Disconnected):
            self._line(f"-- disconnected ({event.reason}); waiting for the device")

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _clock(ts_ms: int) -> str:
    return format_ts(ts_ms)[11:23]


def _describe(event: Received) -> str:
    message, hello = event.message, event.hello
    if isinstance(message, Readings):
        channels = hello.channels if hello is not None else ()
        values = []
        for index, value in message.values.items():
            if index < len(channels):
                c = channels[index]
                values.append(f"{c.sensor}:{c.metric}={value:g} {c.unit}")
            else:
                values.append(f"#{index}={value:g}")
        when = format_ts(event.ts_ms) if event.ts_ms is not None else "?"
        return f"t={message.uptime_ms} ms ({when})  " + "  ".join(values)
    if isinstance(message, Hello):
        names = ", ".join(c.label for c in message.channels)
        interval = f" every {message.interval_ms} ms," if message.interval_ms else ""
        return (f"{message.device} firmware {message.firmware} protocol "
                f"{message.protocol_text},{interval} channels: {names or 'none'}")
    if isinstance(message, Ack):
        extra = " ".join(f"{k}={v}" for k, v in message.fields.items())
        return f"ref={message.ref} {extra}".rstrip()
    if isinstance(message, DeviceError):
        parts = [f"code={message.code}"]
        if message.ref is not None:
            parts.append(f"ref={message.ref}")
        if message.channel is not None:
            parts.append(f"ch={message.channel}")
            if hello is not None and message.channel < len(hello.channels):
                parts.append(f"({hello.channels[message.channel].label})")
        return " ".join(parts)
    return " ".join(f"{k}={v}" for k, v in event.frame.fields.items()) + "  (unknown kind)"
