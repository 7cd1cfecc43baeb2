"""Firmware bridge decoder throughput, in frames per second (target: >= 20,000 frames/s).

Decodes a stream of realistic frames (an R frame with four channels, as the reference
firmware writes it, with a HELLO, an ACK and a line of noise now and then) fed in 4 KiB
chunks, as the session reads a serial port. Two figures: framing alone (resync, CRC, grammar)
and framing plus interpretation into messages (what the session does per frame).

Run: ``.venv/bin/python benchmarks/bridge.py [--frames 200000] [--repeats 5]``.
"""

import argparse
import os
import platform
import statistics
import sys
import time

from firmware_bridge.frame import Frame, FrameDecoder
from firmware_bridge.messages import (
    Channel,
    encode_ack,
    encode_hello,
    encode_readings,
    format_fixed,
    parse_message,
)

TARGET_FRAMES_PER_S = 20_000
CHUNK_BYTES = 4096
CHANNELS = (
    Channel("a0", "voltage", "V"),
    Channel("a1", "voltage", "V"),
    Channel("a2", "voltage", "V"),
    Channel("ds18b20", "temperature", "degC"),
)


def make_stream(frames: int) -> tuple[bytes, int]:
    """A byte stream of ``frames`` frames and the number of valid frames in it."""
    parts = []
    for n in range(frames):
        seq, uptime_ms = n % 65536, 1000 + n * 100
        if n % 1000 == 0:
            parts.append(encode_hello(seq, uptime_ms, "lab-uno-1", "1.0.0", CHANNELS,
                                      interval_ms=100))
        elif n % 500 == 0:
            parts.append(encode_ack(seq, uptime_ms, n % 65536, {"ms": 100}))
        else:
            parts.append(encode_readings(seq, uptime_ms, {
                0: format_fixed(n % 5000, 3), 1: format_fixed(3300 - n % 3300, 3),
                2: format_fixed(1234, 3), 3: format_fixed((344 + n % 16) * 625, 4),
            }))
        if n % 2000 == 1:
            parts.append(b"debug: loop took 3 ms\r\n")
    return b"".join(parts), frames


def run(stream: bytes, *, interpret: bool) -> tuple[float, int]:
    """Seconds to decode ``stream`` and the number of frames decoded."""
    decoder = FrameDecoder()
    count = 0
    started = time.perf_counter()
    for offset in range(0, len(stream), CHUNK_BYTES):
        for item in decoder.feed(stream[offset:offset + CHUNK_BYTES]):
            if isinstance(item, Frame):
                count += 1
                if interpret:
                    parse_message(item)
    return time.perf_counter() - started, count


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {load}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    stream, expected = make_stream(args.frames)
    print(f"machine: {conditions()}")
    print(f"stream: {expected} frames, {len(stream) / 1e6:.1f} MB "
          f"({len(stream) / expected:.0f} B/frame), {CHUNK_BYTES} B chunks, "
          f"best and median of {args.repeats} runs")
    verdict = 0
    for label, interpret in (("framing only", False), ("framing + messages", True)):
        rates = []
        for _ in range(args.repeats):
            seconds, count = run(stream, interpret=interpret)
            if count != expected:
                print(f"error: decoded {count} frames, expected {expected}", file=sys.stderr)
                return 1
            rates.append(count / seconds)
        best, median = max(rates), statistics.median(rates)
        ok = "ok" if median >= TARGET_FRAMES_PER_S else "BELOW TARGET"
        print(f"{label:>20}: best {best:,.0f} frames/s, median {median:,.0f} frames/s "
              f"(target {TARGET_FRAMES_PER_S:,}: {ok})")
        verdict |= median < TARGET_FRAMES_PER_S
    print(f"after: load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return int(verdict)


if __name__ == "__main__":
    sys.exit(main())
