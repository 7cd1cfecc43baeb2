"""CPU an idle hub ingest uses (connected to a real Mosquitto, nothing arriving).

Run: ``.venv/bin/python benchmarks/ingest_idle.py [--seconds 10]``.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabcity.mqtt import parse_broker_url
from hub.config import HubMqttConfig, IngestConfig
from hub.ingest import Ingest
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"conditions: {os.cpu_count()} cpus | load {load}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        ingest = Ingest(parse_broker_url(broker.url), HubMqttConfig(url=broker.url),
                        IngestConfig(), SqliteStorage(work / "hub.db"),
                        DeviceRegistry(work / "registry.db"), HubMetrics())
        ingest.start()
        time.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(args.seconds)
        share = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        ingest.stop()
        broker.stop()
    print(f"idle hub ingest: {100 * share:.2f} % of one core over {args.seconds:g} s")


if __name__ == "__main__":
    main()
