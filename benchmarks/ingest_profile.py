"""Where one ingest process spends its time: a backlog drain (``benchmarks/ingest.py``'s
``hub_run``) sampled by py-spy, summarised per thread and per function.

py-spy samples the benchmark's own process from outside (no tracing overhead in the hub's
threads; idle threads are left out, so the shares are of CPU time). The publisher that fills
the backlog is a child process and is not sampled. Install py-spy from PyPI
(``pip install py-spy``) or name it with ``--py-spy``.

Run: ``.venv/bin/python benchmarks/ingest_profile.py [--per-message 50] [--messages 4000]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import Servers, conditions, hub_run

from tests.servers import Mosquitto

FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")  # "function (file:line)" -> "function (file)"
THREAD_RUN = "Thread.run (threading.py)"


def find_py_spy(given: str | None) -> str:
    """The py-spy binary: ``--py-spy``, next to this Python, or on the PATH."""
    for candidate in (given, str(Path(sys.executable).with_name("py-spy")),
                      shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("py-spy not found: `pip install py-spy` or pass --py-spy PATH")


def summarise(raw: Path, top: int) -> str:
    """Per-thread shares, then the functions with the most samples (own and with callees) in
    the hub's threads (the benchmark's main thread, which counts the store, left out)."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = hub = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        functions = [FRAME.sub(r"\1 (\2)", frame) for frame in stack.split(";")[1:]]
        # py-spy's thread names go stale when ids are reused: name a thread by its target.
        target = functions[functions.index(THREAD_RUN) + 1] \
            if THREAD_RUN in functions[:-1] else "main thread"
        threads[target] += count
        samples += count
        if target == "main thread":
            continue
        hub += count
        own[functions[-1]] += count
        for name in set(functions):
            total[name] += count
    if not hub:
        return "no samples"
    lines = [f"{samples:,} samples (CPU, idle threads left out); per thread:"]
    lines += [f"  {n / samples:6.1%}  {name}" for name, n in threads.most_common()]
    lines += ["", f"hub threads, top {top} functions by own samples:"]
    lines += [f"  {n / hub:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", f"hub threads, top {top} functions with their callees:"]
    lines += [f"  {n / hub:6.1%}  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-message", type=int, default=50, help="readings per message")
    parser.add_argument("--messages", type=int, default=4000, help="messages in the backlog")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--gil", action="store_true",
                        help="sample only the thread holding the GIL (what one process shares)")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--py-spy", dest="py_spy", help="path of the py-spy binary")
    args = parser.parse_args()
    py_spy = find_py_spy(args.py_spy)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        raw = args.raw or workdir / "profile.txt"
        broker = Mosquitto(workdir / "mosquitto").start()
        servers = Servers(workdir, ("sqlite",))
        print("conditions:", conditions(), flush=True)
        spy = subprocess.Popen([py_spy, "record", "--pid", str(os.getpid()), "--format", "raw",
                                "--threads", "--nonblocking", "--rate", str(args.rate),
                                "--output", str(raw), *(["--gil"] if args.gil else [])],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        time.sleep(1)  # attached
        try:
            run = hub_run("sqlite: hub, backlog, profiled", broker, workdir, args.messages,
                          args.per_message, "backlog", "sqlite", servers)
        finally:
            spy.send_signal(signal.SIGINT)
            _, err = spy.communicate(timeout=60)
            servers.stop()
            broker.stop()
        if spy.returncode not in (0, -signal.SIGINT) or not raw.exists():
            print(err.decode(errors="replace"), file=sys.stderr)
            return 1
        print(f"{run.name}: {run.readings_s:,.0f} readings/s, {run.messages_s:,.0f} msg/s "
              "(slowed by sampling)\n")
        print(summarise(raw, args.top))
        print("\nconditions after:", conditions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
