"""Before and after, in one run: backlog drains of the MQTT ceiling and of the hub (SQLite) for
several source trees of the project, alternated round by round, each in its own process.

Every tree is measured with *this* checkout's benchmark (``benchmarks/ingest.py``: the same
ceiling, publisher and clocks); only ``fabcity`` and ``hub`` come from the tree. Besides the
wall-clock rates it prints the process CPU time per message of the ceiling subscriber and of
the hub (from its connect to its last write), which a machine loaded by other work disturbs
much less than the rates.

Run: ``git worktree add /tmp/before <commit>`` (or ``git archive <commit> | tar -x -C DIR``),
then ``.venv/bin/python benchmarks/ingest_compare.py --tree before=/tmp/before --tree
after=. [--rounds 2] [--shape 50:4000 --shape 1:15000]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve()
# What the benchmark imports from the project: loaded from the tree under test first.
TREE_MODULES = ("fabcity.codec", "fabcity.mqtt", "fabcity.reading", "hub.config", "hub.ingest",
                "hub.metrics", "hub.registry", "hub.storage.base", "hub.storage.sqlite",
                "hub.storage.influxdb1", "hub.storage.influxdb2", "hub.storage.lineprotocol")


def load_benchmark(tree: Path) -> ModuleType:
    """``benchmarks/ingest.py`` of this checkout, on top of the project modules of ``tree``."""
    sys.path.insert(0, str(tree))
    for name in TREE_MODULES:
        importlib.import_module(name)
    spec = importlib.util.spec_from_file_location("ingest_bench", HERE.with_name("ingest.py"))
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look themselves up there
    spec.loader.exec_module(bench)
    assert sys.modules["hub.ingest"].__file__.startswith(str(tree))  # type: ignore[union-attr]
    return bench


def measure(label: str, tree: Path, shapes: list[tuple[int, int]]) -> None:
    """Child process: the ceiling then the hub for each shape, one line each."""
    bench = load_benchmark(tree)
    cpu: dict[str, float] = {}
    timed = bench.timed

    def timed_cpu(storage: Any) -> Any:
        storage = timed(storage)
        write = storage.write

        def write_and_note(readings: Any) -> Any:
            n = write(readings)
            cpu["last_write"] = time.process_time()
            return n

        storage.write = write_and_note
        return storage

    start = bench.LatencyIngest.start

    def start_and_note(self: Any) -> None:
        cpu["connect"] = time.process_time()  # the last start is the one that drains
        start(self)

    bench.timed = timed_cpu
    bench.LatencyIngest.start = start_and_note
    from tests.servers import Mosquitto

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir / "mosquitto").start()
        servers = bench.Servers(workdir, ("sqlite",))
        try:
            for per, count in shapes:
                before = time.process_time()
                ceiling = bench.ceiling_run("ceiling", broker, count, per, "backlog")
                ceiling_us = (time.process_time() - before) / count * 1e6
                hub = bench.hub_run("hub", broker, workdir, count, per, "backlog", "sqlite",
                                    servers)
                hub_us = (cpu["last_write"] - cpu["connect"]) / count * 1e6
                lost = "" if hub.items == hub.expected else f"  LOST {hub.expected - hub.items:,}"
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                print(f"| {label} | {per} | {ceiling.messages_s:,.0f} | {hub.messages_s:,.0f} | "
                      f"{hub.readings_s:,.0f} | {hub.messages_s / ceiling.messages_s:.0%} | "
                      f"{ceiling_us:.0f} | {hub_us:.0f} | {ceiling_us / hub_us:.0%} | {load} |"
                      f"{lost}", flush=True)
        finally:
            servers.stop()
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH",
                        help="a source tree to measure (repeat; measured in this order)")
    parser.add_argument("--shape", action="append", metavar="PER:MESSAGES",
                        help="readings per message and messages (default 50:4000, 1:15000)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = [(int(p), int(n)) for p, n in (s.split(":") for s in args.shape or
                                              ("50:4000", "1:15000"))]
    if args.child:
        measure(args.child[0], Path(args.child[1]).resolve(), shapes)
        return 0
    print("| tree | readings/msg | ceiling msg/s | hub msg/s | hub readings/s | hub/ceiling | "
          "ceiling CPU µs/msg | hub CPU µs/msg | CPU ratio | load 1/5/15 min |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
    shape_args = [arg for per, n in shapes for arg in ("--shape", f"{per}:{n}")]
    for _ in range(args.rounds):
        for tree in args.tree:
            label, path = tree.split("=", 1)
            subprocess.run([sys.executable, str(HERE), "--tree", tree, *shape_args,
                            "--child", label, path], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
