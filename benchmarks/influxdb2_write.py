"""Write throughput of the ``influxdb`` back-end (InfluxDB 2.x / 3.x) (target: >= 50,000
readings/s).

influxdb-client's batching pipeline is built on reactivex and costs something per item.
Measured two ways, each as readings/s through ``InfluxDB2Storage.write`` in batches of
20,000 readings (what ingest hands it under backlog), once per line item and once with
pre-joined bodies of ``batch_size`` lines as items:

1. the pipeline alone: the HTTP request stubbed out (no I/O);
2. end to end against a real VictoriaMetrics (its InfluxDB v2 write API), gzip on and off.

Run: ``.venv/bin/python benchmarks/influxdb2_write.py [--readings 400000] [--url URL]``
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabcity.reading import Reading
from hub.storage.influxdb2 import InfluxDB2Storage
from tests.servers import VictoriaMetrics

TARGET_READINGS_PER_S = 50_000
BATCH = 20_000
SERIES = 200
START_MS = 1_790_000_000_000


def readings(count: int, offset_ms: int) -> list[Reading]:
    """``count`` readings over ``SERIES`` series, one per second per series."""
    return [Reading(f"site{i % 4}", f"dev{i % SERIES}", "bme280", "temperature",
                    20.0 + (i % 97) / 10, START_MS + offset_ms + (i // SERIES) * 1000)
            for i in range(count)]


def run(url: str, total: int, chunked: bool, stub: bool, **options: Any) -> float:
    """Readings/s through ``write`` for ``total`` readings in batches of ``BATCH``."""
    storage = InfluxDB2Storage(url=url, bucket="bench", org="bench", token="t", **options)
    storage.chunked = chunked
    storage._write_api.close()  # reopen with the chosen item shape
    storage._write_api = storage._open_write_api()
    if stub:
        storage._write_api._post_write = lambda *args, **kwargs: None  # type: ignore[method-assign]
    batches = [readings(BATCH, offset_ms=i * 10_000_000) for i in range(total // BATCH)]
    started = time.perf_counter()
    for batch in batches:
        storage.write(batch)
    elapsed = time.perf_counter() - started
    storage.close()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=400_000)
    parser.add_argument("--url", help="an existing server taking /api/v2/write")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{args.readings:,} readings in batches of {BATCH:,}")
    for chunked in (False, True):
        rate = run("http://127.0.0.1:9", args.readings, chunked, stub=True)
        print(f"pipeline only, {'bodies' if chunked else 'lines '} as items: "
              f"{rate:12,.0f} readings/s")
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.url is None:
            server = VictoriaMetrics(Path(tmp)).start()
        url = args.url or server.url  # type: ignore[union-attr]
        try:
            for chunked in (False, True):
                for use_gzip in (False, True):
                    rate = run(url, args.readings, chunked, stub=False, gzip=use_gzip)
                    mark = "ok" if rate >= TARGET_READINGS_PER_S else "BELOW TARGET"
                    print(f"VictoriaMetrics, {'bodies' if chunked else 'lines '} as items, "
                          f"gzip {'on ' if use_gzip else 'off'}: {rate:12,.0f} readings/s "
                          f"({mark})")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
