"""What end-to-end confirmation costs: drain buffered readings through a real hub with
``[publish] confirm`` off and on, alternately, in one run.

Mosquitto runs on a free port with ``deploy/mosquitto/``'s config; the hub runs as
``fabcity hub serve`` on SQLite in a child process; the publisher runs in this process on a
buffer prefilled with ``--drain`` readings (a device per round). For each round it prints when
the buffer was empty (with confirm, that is when the hub confirmed the last batch; without,
when the broker PUBACKed it) and when the hub's database held every reading.

    .venv/bin/python benchmarks/edge_confirm.py [--drain 100000] [--rounds 2]
        [--max-unconfirmed 20000 100000]
"""

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.buffer import Buffer  # noqa: E402
from edge.config import MqttConfig, PublishConfig  # noqa: E402
from edge.publisher import Publisher  # noqa: E402
from fabcity.reading import Reading, now_ms  # noqa: E402
from tests.servers import FabcityProcess, Mosquitto, free_port  # noqa: E402

TIMEOUT_S = 300.0


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, load average {load}; python "
            f"{platform.python_version()}, {mosquitto.splitlines()[0] if mosquitto else ''}")


def start_hub(work: Path, broker: Mosquitto) -> tuple[FabcityProcess, Path]:
    port, db = free_port(), work / "hub.db"
    config = work / "hub.toml"
    config.write_text(f'state_dir = "{work}"\n[mqtt]\nurl = "{broker.url}"\n'
                      f'[storage]\nbackend = "sqlite"\npath = "{db}"\n'
                      f'[api]\nhost = "127.0.0.1"\nport = {port}\n')
    hub = FabcityProcess(["hub", "serve", "--config", str(config)], work / "hub.log").start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                return hub, db
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the hub did not start: see {work / 'hub.log'}")


def stored(db: Path, device: str) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM readings WHERE device = ?",
                                (device,)).fetchone()[0])
    except sqlite3.OperationalError:  # no table yet
        return 0
    finally:
        conn.close()


def drain(work: Path, broker: Mosquitto, db: Path, device: str, count: int,
          cfg: PublishConfig) -> tuple[float, float]:
    """Seconds until the buffer was empty, and until the hub held every reading."""
    buffer = Buffer(work / f"{device}.db")
    base = now_ms() - 3_600_000
    for start in range(0, count, 5_000):
        buffer.put([Reading("bench", device, "dust", "pm2_5", float(i % 500) / 10, base + i)
                    for i in range(start, min(count, start + 5_000))])
    publisher = Publisher("bench", device, buffer, MqttConfig(url=broker.url), cfg)
    started = time.monotonic()
    publisher.start()
    empty_s = all_s = 0.0
    try:
        while not all_s:
            time.sleep(0.02)
            now = time.monotonic() - started
            if not empty_s and len(buffer) == 0:
                empty_s = now
            if empty_s and stored(db, device) >= count:
                all_s = now
            if now > TIMEOUT_S:
                raise RuntimeError(f"{device}: {len(buffer)} left after {TIMEOUT_S:g} s")
    finally:
        publisher.stop()
        buffer.close()
    return empty_s, all_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drain", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-unconfirmed", type=int, nargs="+",
                        default=[PublishConfig().max_unconfirmed],
                        help="windows to compare, each a round of its own")
    args = parser.parse_args()
    print(f"before: {conditions()}")
    with tempfile.TemporaryDirectory(prefix="fabcity-confirm-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        hub, db = start_hub(work, broker)
        try:
            for round_ in range(args.rounds):
                runs = [(False, PublishConfig().max_unconfirmed)] + [
                    (True, window) for window in args.max_unconfirmed]
                for confirm, window_size in runs:
                    device = f"r{round_}-{'on' if confirm else 'off'}-{window_size}"
                    cfg = PublishConfig(confirm=confirm, max_unconfirmed=window_size)
                    empty_s, all_s = drain(work, broker, db, device, args.drain, cfg)
                    window = f" (max_unconfirmed {cfg.max_unconfirmed:,})" if confirm else ""
                    print(f"confirm {'on' if confirm else 'off'}{window}: {args.drain:,} readings, "
                          f"buffer empty after {empty_s:.2f} s, all stored after {all_s:.2f} s "
                          f"({args.drain / all_s:,.0f} readings/s end to end)", flush=True)
        finally:
            hub.terminate()
            broker.stop()
    print(f"after: {conditions()}")


if __name__ == "__main__":
    main()
