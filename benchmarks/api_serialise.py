"""How fast ``GET /api/v1/readings`` turns readings into JSON: one pydantic model per row
(the former route) against plain rows encoded by json, orjson or msgspec (when installed) and
rows written straight from the tuples (``readings_json``, the route now); then gzip of the
answers (zlib levels against ISA-L), and the whole request through the ASGI app on SQLite.

Two answers: 10,000 raw readings of one series, and a day at 1-minute buckets over 10 series
(14,400 readings). Run: ``.venv/bin/python benchmarks/api_serialise.py [--repeat 7]``.
"""

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabcity.reading import Reading, format_ts
from hub.api import create_app
from hub.api.schemas import ReadingPublic, ReadingsPublic, ReadingsQueryPublic
from hub.api.serialise import reading_dicts, readings_json
from hub.context import HubContext
from hub.registry import DeviceRegistry
from hub.storage.sqlite import SqliteStorage

T0_MS = 1_794_960_000_000
DAY_MS = 86_400_000


def _installed(name: str) -> bool:
    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    libs = ", ".join(f"{n} {version(n)}" for n in ("fastapi", "pydantic", "orjson", "isal",
                                                   "msgspec") if _installed(n))
    return (f"cpus {os.cpu_count()}, load {load}, Python {platform.python_version()}, "
            f"{platform.machine()}, {libs}")


def raw_readings() -> list[Reading]:
    """Values and times as sensors give them (noisy values, any millisecond)."""
    return [Reading("street-12", "pi-air", "air", "pm2_5", 10.0 + (i * 7919 % 1000) / 137,
                    T0_MS + i * 1000 + i * 37 % 1000) for i in range(10_000)]


def bucket_readings() -> list[Reading]:
    return [Reading("street-12", f"pi-{s:02d}", "air", "pm2_5", 12.0 + m % 13 / 7,
                    T0_MS + m * 60_000) for s in range(10) for m in range(1440)]


def query_echo() -> dict[str, object]:
    return {"site": None, "device": None, "sensor": None, "metric": None,
            "start": format_ts(T0_MS), "end": format_ts(T0_MS + DAY_MS), "every": None,
            "agg": None, "limit": 100_000}


def before(rows: list[Reading]) -> bytes:
    body = ReadingsPublic(query=ReadingsQueryPublic(**query_echo()),  # type: ignore[arg-type]
                          count=len(rows), truncated=False,
                          readings=[ReadingPublic.of(r) for r in rows])
    return body.model_dump_json().encode()


def plain(encode: Callable[[object], bytes]) -> Callable[[list[Reading]], bytes]:
    def run(rows: list[Reading]) -> bytes:
        return encode({"query": query_echo(), "count": len(rows), "truncated": False,
                       "readings": reading_dicts(rows)})
    return run


def straight(rows: list[Reading]) -> bytes:
    return orjson.dumps({"query": query_echo(), "count": len(rows), "truncated": False,
                         "readings": orjson.Fragment(readings_json(rows))})


ENCODERS: dict[str, Callable[[list[Reading]], bytes]] = {
    "pydantic model per row (first route)": before,
    "dicts + json": plain(lambda o: json.dumps(o, separators=(",", ":")).encode()),
    "dicts + orjson (before)": plain(orjson.dumps),
    "rows straight from tuples (now)": straight,
}
try:
    import msgspec

    ENCODERS["dicts + msgspec"] = plain(msgspec.json.encode)
except ImportError:
    pass


def compressors() -> dict[str, Callable[[bytes], bytes]]:
    out: dict[str, Callable[[bytes], bytes]] = {
        f"zlib level {n}": lambda b, n=n: gzip.compress(b, compresslevel=n, mtime=0)  # type: ignore[misc]
        for n in (1, 4, 6)}
    try:
        from isal import igzip
    except ImportError:
        return out
    for n in (1, 2):
        out[f"ISA-L level {n}"] = lambda b, n=n: igzip.compress(  # type: ignore[misc]
            b, compresslevel=n, mtime=0)
    return out


def best_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(conditions())
    cases = {"10,000 raw readings": raw_readings(),
             "1 day at 1m x 10 series (14,400)": bucket_readings()}
    for name, rows in cases.items():
        print(f"\n{name}: serialising only (best / median of {args.repeat}, ms)")
        for label, encode in ENCODERS.items():
            best, median = best_ms(lambda e=encode, r=rows: e(r), args.repeat)  # type: ignore[misc]
            print(f"  {label:34s} {best:8.1f} {median:8.1f}")
        body = straight(rows)
        assert body == plain(orjson.dumps)(rows)  # the same bytes
        print(f"  gzip of the {len(body):,}-byte answer: size, best / median ms")
        for label, compress in compressors().items():
            size = len(compress(body))
            best, median = best_ms(lambda c=compress, b=body: c(b), args.repeat)  # type: ignore[misc]
            print(f"  {label:34s} {size:>9,} B ({size / len(body):5.1%}) {best:6.1f} {median:6.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        storage = SqliteStorage(Path(tmp) / "bench.db", synchronous="normal")
        registry = DeviceRegistry(Path(tmp) / "registry.db")
        storage.write(raw_readings())
        storage.write([Reading("street-12", f"pi-{s:02d}", "air", "pm2_5", 12.0 + i % 13,
                               T0_MS + i * 10_000) for s in range(10) for i in range(8640)])
        client = TestClient(create_app(HubContext(storage=storage, registry=registry)))
        requests: dict[str, dict[str, str | None]] = {
            "10,000 raw readings": {"device": "pi-air", "start": format_ts(T0_MS),
                                    "end": format_ts(T0_MS + DAY_MS), "limit": "100000"},
            "1 day at 1m x 10 series": {"device": None, "start": format_ts(T0_MS),
                                        "end": format_ts(T0_MS + DAY_MS), "every": "1m",
                                        "limit": "100000"},
        }
        print("\nwhole request GET /api/v1/readings on SQLite "
              f"(best / median of {args.repeat}, ms)")
        for name, given in requests.items():
            params = {k: v for k, v in given.items() if v is not None}
            count = client.get("/api/v1/readings", params=params).json()["count"]
            best, median = best_ms(lambda p=params: client.get(  # type: ignore[misc]
                "/api/v1/readings", params=p), args.repeat)
            print(f"  {name:34s} {best:8.1f} {median:8.1f}  ({count} readings)")
        storage.close()
        registry.close()


if __name__ == "__main__":
    main()
