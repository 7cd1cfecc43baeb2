"""``fabcity bridge monitor``: every frame and damaged line as it arrives, as text or JSON.

The text view is for a terminal: line noise reaches it only escaped (every byte outside
printable ASCII becomes ``\\xNN``), so a NUL, an XOFF or an escape sequence on the serial
line cannot freeze or repaint the operator's terminal. The JSON view (``--json``) is for
scripts: one object per line, each with a ``type`` (see docs/firmware-protocol.md, section 8).
"""

import argparse
import json
import queue
import sys
import time
from dataclasses import asdict
from typing import Any, Protocol, TextIO

from fabcity.reading import format_ts
from firmware_bridge.errors import ProtocolError
from firmware_bridge.frame import Rejected
from firmware_bridge.messages import Ack, DeviceError, Hello, Readings
from firmware_bridge.session import (
    Connected,
    DeviceSession,
    Disconnected,
    LinkEvent,
    Received,
    Refused,
)
from firmware_bridge.stats import LinkStats

__all__ = ["JsonView", "TextView", "printable", "run_monitor"]

EVENT_POLL_S = 0.2

_BACKSLASH = 0x5C
_ESCAPED = [
    "\\\\" if code == _BACKSLASH else chr(code) if 0x20 <= code <= 0x7E else f"\\x{code:02x}"
    for code in range(256)
]


def printable(data: bytes | str) -> str:
    """``data`` with every byte outside 0x20..0x7E (C0 controls, DEL, 0x80 and above) written
    as ``\\xNN`` and a backslash as ``\\\\``: safe to print, and unambiguous."""
    if isinstance(data, bytes):
        return "".join(_ESCAPED[code] for code in data)
    return "".join(_ESCAPED[ord(c)] if ord(c) < 256 else f"\\u{ord(c):04x}" for c in data)


class View(Protocol):
    """What the monitor loop needs from an output format."""

    frames: int

    def start(self, port: str, baud: int) -> None: ...
    def show(self, event: LinkEvent, lost_frames: int) -> None: ...
    def refused(self, error: ProtocolError) -> None: ...
    def stats(self, stats: LinkStats, *, ended: str | None = None) -> None: ...


def run_monitor(args: argparse.Namespace) -> int:
    """``fabcity bridge monitor``: until Ctrl-C, ``--count`` frames or ``--duration-s``."""
    events: queue.Queue[LinkEvent] = queue.Queue()
    session = DeviceSession(args.port, baudrate=args.baud, on_event=events.put)
    session.open(wait_for_hello=False)
    out = sys.stdout
    view: View = JsonView(out) if args.json else TextView(out, raw=args.raw)
    view.start(args.port, args.baud)
    started = last_stats = time.monotonic()
    status, ended = 0, "interrupted"
    try:
        while True:
            now = time.monotonic()
            if args.duration_s is not None and now - started >= args.duration_s:
                ended = "duration"
                break
            if args.count is not None and view.frames >= args.count:
                ended = "count"
                break
            if now - last_stats >= args.stats_every_s:
                view.stats(session.stats)
                last_stats = now
            try:
                event = events.get(timeout=EVENT_POLL_S)
            except queue.Empty:
                continue
            if isinstance(event, Refused):
                view.refused(event.error)
                print(f"fabcity: error: {event.error}", file=sys.stderr)
                status, ended = 2, "refused"
                break
            view.show(event, session.stats.lost_frames)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
        view.stats(session.stats, ended=ended)
    return status


class TextView:
    """One human-readable line per event; counters as ``-- frames N | ...`` lines."""

    def __init__(self, out: TextIO, *, raw: bool) -> None:
        self.out = out
        self.raw = raw
        self.frames = 0
        self._lost = 0

    def start(self, port: str, baud: int) -> None:
        self._line(f"-- monitoring {port} at {baud} baud; Ctrl-C to stop")

    def refused(self, error: ProtocolError) -> None:
        pass  # the error goes to stderr

    def stats(self, stats: LinkStats, *, ended: str | None = None) -> None:
        self._line(f"-- {stats.summary()}")

    def show(self, event: LinkEvent, lost_frames: int) -> None:
        if lost_frames > self._lost:
            self._line(f"!! {lost_frames - self._lost} frame(s) lost (sequence gap)")
            self._lost = lost_frames
        if isinstance(event, Received):
            self.frames += 1
            if self.raw:
                self._line(event.frame.raw.decode("ascii"))  # valid frames are printable
            else:
                self._line(f"{_clock(event.received_ms)} #{event.frame.seq:<5} "
                           f"{event.frame.kind:<5} {_describe(event)}")
        elif isinstance(event, Rejected):
            text = printable(event.raw.removesuffix(b"\r"))
            if self.raw:
                self._line(f"{text}    <- {event.reason}" if event.reason != "noise" else text)
            else:
                detail = f" ({printable(event.detail)})" if event.detail else ""
                self._line(f"!! {event.reason}{detail}: {text}")
        elif isinstance(event, Connected):
            self._line(f"-- connected: {event.hello.device} firmware {event.hello.firmware}, "
                       f"protocol {event.hello.protocol_text}")
        elif isinstance(event, Disconnected):
            self._line(f"-- disconnected ({printable(event.reason)}); waiting for the device")

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)


class JsonView:
    """One JSON object per line: ``frame``, ``lost``, ``noise``, ``rejected``, ``connected``,
    ``disconnected``, ``refused``, ``stats`` (every ``--stats-every-s``) and a final
    ``summary`` with every counter and why the monitor ``ended``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.frames = 0
        self._lost = 0

    def start(self, port: str, baud: int) -> None:
        pass  # nothing but events: every line is one

    def refused(self, error: ProtocolError) -> None:
        self._line({"type": "refused", "error": str(error)})

    def stats(self, stats: LinkStats, *, ended: str | None = None) -> None:
        if ended is None:
            self._line({"type": "stats", **asdict(stats)})
        else:
            self._line({"type": "summary", **asdict(stats), "ended": ended})

    def show(self, event: LinkEvent, lost_frames: int) -> None:
        if lost_frames > self._lost:
            self._line({"type": "lost", "frames": lost_frames - self._lost})
            self._lost = lost_frames
        if isinstance(event, Received):
            self.frames += 1
            frame = event.frame
            self._line({
                "type": "frame", "seq": frame.seq, "kind": frame.kind, "fields": frame.fields,
                "raw_hex": frame.raw.hex(), "received": format_ts(event.received_ms),
                "ts": format_ts(event.ts_ms) if event.ts_ms is not None else None,
                "known_kind": event.message is not None,
            })
        elif isinstance(event, Rejected):
            line: dict[str, Any] = {"type": "noise" if event.reason == "noise" else "rejected"}
            if event.reason != "noise":
                line |= {"reason": event.reason, "detail": event.detail}
            line |= {"raw_hex": event.raw.hex(),
                     "text": printable(event.raw.removesuffix(b"\r"))}
            self._line(line)
        elif isinstance(event, Connected):
            hello = event.hello
            self._line({
                "type": "connected", "device": hello.device, "firmware": hello.firmware,
                "protocol": hello.protocol_text, "interval_ms": hello.interval_ms,
                "channels": [c.label for c in hello.channels],
            })
        elif isinstance(event, Disconnected):
            self._line({"type": "disconnected", "reason": event.reason})

    def _line(self, obj: dict[str, Any]) -> None:
        print(json.dumps(obj, separators=(",", ":")), file=self.out, flush=True)


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
