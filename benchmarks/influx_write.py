"""Write throughput of the InfluxDB 1.x back-end against a real ``influxd``.

Measures, on a fresh InfluxDB 1.x started on a free port (or ``--url``):

1. building line protocol for batches of 20,000 readings (no I/O);
2. readings/s through ``InfluxDB1Storage.write`` with batches of 20,000 readings, with and
   without gzip;
3. InfluxDB's own ceiling: pre-built 5,000-line bodies POSTed straight to ``/write``.

Run: ``.venv/bin/python benchmarks/influx_write.py [--readings 400000]``
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabcity.reading import Reading
from hub.storage.influxdb1 import InfluxDB1Storage
from hub.storage.lineprotocol import reading_bodies, reading_lines
from tests.servers import InfluxDB1

BATCH = 20_000
SERIES = 200
START_MS = 1_790_000_000_000


def readings(count: int, offset_ms: int = 0) -> list[Reading]:
    """``count`` readings over ``SERIES`` series, one per second per series."""
    return [Reading(f"site{i % 4}", f"dev{i % SERIES}", "bme280", "temperature",
                    20.0 + (i % 97) / 10, START_MS + offset_ms + (i // SERIES) * 1000)
            for i in range(count)]


def conditions(url: str) -> None:
    try:
        influxd = subprocess.run(["influxd", "version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
    except OSError:
        influxd = "influxd not found locally"
    print(f"cpus={os.cpu_count()} load={os.getloadavg()} python={platform.python_version()} "
          f"urllib3={urllib3.__version__} {influxd} server={url}")


def bench_build(batch: list[Reading]) -> None:
    for name, build in (("reading_bodies(5000)", lambda: reading_bodies(batch, 5000)),
                        ("reading_lines", lambda: reading_lines(batch))):
        build()  # warm the series cache
        t0 = time.perf_counter()
        rounds = 10
        for _ in range(rounds):
            build()
        rate = rounds * len(batch) / (time.perf_counter() - t0)
        print(f"build {name:22} {rate:12,.0f} readings/s")


def bench_storage(url: str, total: int, gzip: bool) -> None:
    storage = InfluxDB1Storage(url=url, database=f"bench_gzip_{int(gzip)}", gzip=gzip)
    batches = [readings(BATCH, offset_ms=i * BATCH // SERIES * 1000)
               for i in range(total // BATCH)]
    t0 = time.perf_counter()
    for batch in batches:
        storage.write(batch)
    elapsed = time.perf_counter() - t0
    print(f"InfluxDB1Storage.write gzip={gzip!s:5} {total / elapsed:12,.0f} readings/s "
          f"({total:,} readings in {elapsed:.2f} s, batches of {BATCH:,})")
    storage.close()


def bench_ceiling(url: str, total: int) -> None:
    InfluxDB1Storage(url=url, database="bench_ceiling").close()  # creates it
    bodies = reading_bodies(readings(total), 5000)
    pool = urllib3.PoolManager(maxsize=1)
    target = f"{url}/write?db=bench_ceiling&rp=fabcity_raw&precision=ms"
    t0 = time.perf_counter()
    for body in bodies:
        response = pool.request("POST", target, body=body)
        assert response.status == 204, response.data
    elapsed = time.perf_counter() - t0
    print(f"raw POST /write (5,000 lines) {total / elapsed:12,.0f} readings/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an InfluxDB 1.x to use instead of starting one")
    parser.add_argument("--readings", type=int, default=400_000)
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        server = InfluxDB1(Path(tempfile.mkdtemp(prefix="influx-bench-"))).start()
        url = server.url
    try:
        conditions(url)
        bench_build(readings(BATCH))
        bench_ceiling(url, args.readings)
        bench_storage(url, args.readings, gzip=False)
        bench_storage(url, args.readings, gzip=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
