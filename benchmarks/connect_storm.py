"""Reconnect storm: 1,000 edge agents lose a restarting broker and come back.

Each simulated agent is the agent's own buffer and publisher (``benchmarks/fleet.py``:
``edge/buffer.py`` in a temporary file, ``edge/publisher.py`` with paho's threaded loop, a
few threads per agent), sampling ``--metrics`` readings every ``--interval-s``. paho's threaded
loop cannot hold more than 340 clients in one process (its select() refuses
descriptors above 1023), so the agents run in ``--processes`` child processes. A real
Mosquitto (the project's config; the open-file limit raised to the hard limit, which the
broker inherits) and a real hub (``fabcity hub serve``, SQLite) take them. After
``--steady-s`` the broker is stopped (SIGTERM: it saves its persistence), the agents keep
buffering for ``--outage-s``, then it starts again on the same port.

Printed per run: the broker's, the hub's and the agents' CPU (from /proc) in steady state and
during the storm; when each agent was connected again (p50/p90/all after the broker started,
and the most in any one second), how many TCP connections that took and when the hub itself
was back; how long until every reading sampled before the restart was stored; and at the
end the readings stored against those sampled (nothing lost: the counts are equal; nothing
doubled: the store's key is the reading identity, and the hub's duplicate counter shows the
redeliveries it ignored). ``--jitter off`` replaces the publisher's jittered backoff with
plain doubling (what paho's ``reconnect_delay_set`` does) for comparison; ``--jitter both``
runs one after the other. ``--confirm`` sets the agents' ``[publish] confirm``.

    .venv/bin/python benchmarks/connect_storm.py [--agents 1000] [--outage-s 30] [--jitter both]

Exit status 1 if a reading was lost or an agent did not come back.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet

import edge.publisher

TIMEOUT_S = 240.0


def plain_doubling_s(attempt: int, min_s: float, max_s: float,
                     _rng: random.Random | None = None) -> float:
    """paho's own reconnect delay: the step without jitter."""
    return float(min(max_s, min_s * 2 ** min(attempt, 30)))


def without_jitter() -> None:
    edge.publisher.jittered_backoff_s = plain_doubling_s  # type: ignore[assignment]


def quiet() -> None:
    logging.basicConfig(level=logging.ERROR)  # a thousand agents each saying the broker left


class HubLink:
    """Polls the hub's ``fabcity_mqtt_connected`` until it is 1: when the hub is back."""

    def __init__(self, hub: fleet.Hub, since: float) -> None:
        self.after_s = float("nan")
        self.stop = threading.Event()
        threading.Thread(target=self._run, args=(hub, since), daemon=True).start()

    def _run(self, hub: fleet.Hub, since: float) -> None:
        time.sleep(0.2)
        while not self.stop.is_set():
            if hub.metric("fabcity_mqtt_connected") == 1:
                self.after_s = time.monotonic() - since
                return
            time.sleep(0.1)


def connected(procs: list[fleet.AgentProcess]) -> list[bool]:
    return [flag for proc in procs for flag in proc.ask("connected")]


def wait_connected(procs: list[fleet.AgentProcess], since: float) -> tuple[list[float], bool]:
    """Seconds from ``since`` until each agent was connected (polled every 50 ms)."""
    when: dict[int, float] = {}
    total = len(connected(procs))
    deadline = time.monotonic() + TIMEOUT_S
    while len(when) < total and time.monotonic() < deadline:
        now = time.monotonic()
        for i, flag in enumerate(connected(procs)):
            if flag and i not in when:
                when[i] = now - since
        time.sleep(0.05)
    return sorted(when.values()), len(when) == total


def most_in_one_second(times_s: list[float]) -> int:
    return max(collections.Counter(int(t) for t in times_s).values(), default=0)


def log_count(path: Path, offset: int, text: str) -> int:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").count(text)


def broker_accepts(path: Path, offset: int, since_unix: float) -> list[float]:
    """Seconds from ``since_unix`` to each agent session the broker accepted, from its log
    (whole seconds: the broker's clock, not the starved agents' view)."""
    with path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    return sorted(int(line.split(":", 1)[0]) - since_unix for line in lines
                  if "New client connected" in line and " as fabcity-edge-" in line)


def cpu_line(meters: dict[str, fleet.CpuMeter]) -> str:
    return "CPU % of one core: " + ", ".join(
        f"{name} {meter.percent():.0f}" for name, meter in meters.items())


def run(args: argparse.Namespace, jitter: bool, workdir: Path) -> bool:
    print(f"\n== {args.agents} agents in {args.processes} processes, jitter "
          f"{'on' if jitter else 'off'}, confirm {args.confirm} ({fleet.conditions()})",
          flush=True)
    broker = fleet.start_broker(workdir / "mosquitto")
    hub = fleet.Hub(workdir / "hub", broker.url).start()
    buffers = workdir / "buffers"
    buffers.mkdir()
    metrics = tuple(args.metrics.split(","))
    share = -(-args.agents // args.processes)
    publish = {"confirm": args.confirm == "on"}
    procs = [fleet.AgentProcess(first, min(share, args.agents - first), buffers, broker.url,
                                metrics, args.interval_s,
                                quiet if jitter else lambda: (quiet(), without_jitter()),
                                publish)
             for first in range(0, args.agents, share)]
    try:
        t0 = time.monotonic()
        for proc in procs:
            proc.ask("start")
        first, all_in = wait_connected(procs, t0)
        print(f"first connect: {len(first)}/{args.agents} connected, all after "
              f"{first[-1] if first else float('nan'):.1f} s", flush=True)
        for proc in procs:
            proc.ask("sample")
        assert broker.proc is not None
        meters = {"broker": fleet.CpuMeter(broker.proc.pid), "hub": fleet.CpuMeter(hub.pid),
                  "agents": fleet.CpuMeter(*(proc.pid for proc in procs))}
        time.sleep(args.steady_s)
        rate = args.agents * len(metrics) / args.interval_s
        print(f"steady {args.steady_s:.0f} s, {rate:,.0f} readings/s sampled: "
              f"{cpu_line(meters)}; load {os.getloadavg()[0]:.2f}", flush=True)

        broker.stop()
        time.sleep(args.outage_s)
        buffered = sum(proc.ask("buffered") for proc in procs)
        offset = broker.log.stat().st_size
        restart_ms = int(time.time() * 1000)
        restart_unix = time.time()
        t_up = time.monotonic()
        hub_back = HubLink(hub, t_up)
        for meter in meters.values():
            meter.mark()
        broker.start()
        meters["broker"].pids = [broker.proc.pid]
        back, all_back = wait_connected(procs, t_up)
        storm_cpu = cpu_line(meters)
        expected = sum(proc.ask("sampled", restart_ms) for proc in procs)
        deadline = time.monotonic() + TIMEOUT_S
        while (stored := hub.stored(restart_ms)) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        drained_s = time.monotonic() - t_up
        drain_cpu = cpu_line(meters)
        hub_back.stop.set()
        attempts = log_count(broker.log, offset, "New connection from")
        accepted = log_count(broker.log, offset, "New client connected")
        print(f"outage {args.outage_s:.0f} s: {buffered:,} readings buffered in the agents at "
              f"the restart")
        print(f"reconnect: {len(back)}/{args.agents} agents back; after the broker started: "
              f"p50 {fleet.pct(back, 50):.1f} s, p90 {fleet.pct(back, 90):.1f} s, all "
              f"{back[-1] if back else float('nan'):.1f} s; at most "
              f"{most_in_one_second(back)} in one second; {attempts:,} TCP connections to the "
              f"broker, {accepted:,} sessions accepted; the hub back after "
              f"{hub_back.after_s:.1f} s")
        accepts = broker_accepts(broker.log, offset, restart_unix)
        print(f"  broker's log: {len(accepts)} agent sessions accepted, the last "
              f"{accepts[-1] if accepts else float('nan'):.0f} s after the start, at most "
              f"{most_in_one_second(accepts)} in one second; until all connected: {storm_cpu}")
        print(f"drain: {stored:,}/{expected:,} readings sampled before the restart stored "
              f"{drained_s:.1f} s after the broker started; until then: {drain_cpu}; load "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        for proc in procs:
            proc.ask("stop_sampling")
        total = sum(proc.ask("sampled") for proc in procs)
        deadline = time.monotonic() + TIMEOUT_S
        while hub.stored() < total and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        stored_all = hub.stored()
        left = sum(proc.ask("buffered") for proc in procs)
        duplicates = hub.metric("fabcity_readings_duplicate_total")
        stats = [proc.ask("stats") for proc in procs]
        print(f"end: {total:,} readings sampled, {stored_all:,} stored ({total - stored_all:,} "
              f"lost), {left} still buffered; the hub ignored {duplicates:,.0f} redelivered "
              f"readings; agent processes: {max(s[0] for s in stats)} threads and "
              f"{max(s[1] for s in stats) / 1024:.0f} MB peak RSS each at most, "
              f"{sum(s[2] for s in stats)} late sampler ticks", flush=True)
        return all_in and all_back and stored_all == total and left == 0
    finally:
        for proc in procs:
            proc.close()
        hub.stop()
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=8,
                        help="agent processes (at most 340 agents in each)")
    parser.add_argument("--metrics", default="pm2_5,pm10", help="readings per agent per sample")
    parser.add_argument("--interval-s", type=float, default=5.0)
    parser.add_argument("--steady-s", type=float, default=10.0)
    parser.add_argument("--outage-s", type=float, default=30.0)
    parser.add_argument("--jitter", choices=["on", "off", "both"], default="both")
    parser.add_argument("--confirm", choices=["on", "off"], default="on",
                        help="the agents' [publish] confirm (end-to-end confirmation)")
    args = parser.parse_args()
    quiet()
    fleet.raise_fd_limit()
    ok = True
    for jitter in {"on": [True], "off": [False], "both": [True, False]}[args.jitter]:
        with tempfile.TemporaryDirectory(prefix="fabcity-storm-") as tmp:
            ok = run(args, jitter, Path(tmp)) and ok
    print("ok" if ok else "FAILED: a reading was lost or an agent did not come back")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
