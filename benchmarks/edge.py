"""Edge agent benchmark: resident memory, CPU and disk writes of an agent with 10 sensors at
1 Hz, and the time to drain 100,000 buffered readings to a real Mosquitto after an outage.

The agent runs as ``fabcity edge run`` in a child process with real drivers: SDS011,
PMS5003 and MH-Z19B on pty pairs against simulated devices writing datasheet frames (the
simulators run in this process, so their CPU is not counted), and DS18B20s reading
sysfs-format files. Mosquitto runs on a free port with ``deploy/mosquitto/``'s config.

    .venv/bin/python benchmarks/edge.py [--seconds 60] [--drain 100000]

Targets: peak RSS <= 40 MB, CPU <= 2 % of one core, drain <= 10 s.
"""

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.buffer import Buffer  # noqa: E402
from edge.config import MqttConfig, PublishConfig  # noqa: E402
from edge.publisher import Publisher  # noqa: E402
from fabcity.reading import Reading, now_ms  # noqa: E402
from tests.edge.drivers.serial_sim import (  # noqa: E402
    Mhz19Sim,
    Pms5003Sim,
    PtyDevice,
    Sds011Sim,
)
from tests.servers import Mosquitto  # noqa: E402

TARGET_RSS_MB = 40.0
TARGET_CPU_PCT = 2.0
TARGET_DRAIN_S = 10.0
TARGET_WRITE_KB_S = 10.0
TARGET_SYNCS_S = 1.0
EXPECTED_RATE_PER_S = 19  # 3 SDS011 x 2 metrics, 3 PMS5003 x 3, 2 MH-Z19B, 2 DS18B20, at 1 Hz
WARMUP_S = 5.0
W1_SLAVE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def conditions() -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {load}")
    print(f"python {platform.python_version()}, {mosquitto.splitlines()[0] if mosquitto else ''}")


class Counter:
    """Subscribes to every ``readings`` topic and counts the readings that arrive."""

    def __init__(self, port: int) -> None:
        self.readings = 0
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("fabcity/v1/+/+/readings", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.readings += len(json.loads(msg.payload)["readings"])

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # utime + stime


def proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def proc_io(pid: int) -> dict[str, int]:
    fields = (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {key: int(value) for key, value in fields}


_SYNC_LINE = re.compile(r"^\d+ +(\d+\.\d+) (?:fsync|fdatasync)\(")


class Agent:
    """``fabcity edge run`` as a child process, under ``strace`` counting its syncs if present.

    strace stops the agent only at the traced calls (``--seccomp-bpf``), so the CPU figure
    stays the agent's own.
    """

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.trace = log.with_suffix(".strace")
        self.traced = shutil.which("strace") is not None
        command = [sys.executable, "-m", "fabcity", "edge", "run", "-c", str(config)]
        if self.traced:
            command = ["strace", "-f", "--seccomp-bpf", "-qq", "-ttt",
                       "-e", "trace=fsync,fdatasync", "-o", str(self.trace), *command]
        with log.open("ab") as handle:
            self.proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                         cwd=ROOT)
        self.pid = self.proc.pid if not self.traced else self._traced_child()

    def _traced_child(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # strace forks a probe first: find the agent
            for pid in children.read_text().split() if children.exists() else []:
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    if argv[0] == sys.executable.encode():  # strace has exec'd the agent
                        return int(pid)
            time.sleep(0.01)
        raise RuntimeError("strace started no agent")

    def running(self) -> bool:
        return self.proc.poll() is None

    def syncs_between(self, start: float, end: float) -> int | None:
        """fsync/fdatasync calls between two ``time.time()`` instants (None: no strace)."""
        if not self.traced:
            return None
        times = (float(m.group(1)) for m in map(_SYNC_LINE.match,
                                                  self.trace.read_text().splitlines()) if m)
        return sum(1 for t in times if start <= t < end)

    def stop(self) -> None:
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:  # figures are taken: do not hang on a slow stop
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)


class Figures:
    """What one agent cost over a measured window."""

    def __init__(self, agent: Agent, seconds: float) -> None:
        pid = agent.pid
        start_cpu, start_io = proc_cpu_s(pid), proc_io(pid)
        start_wall, start_t = time.time(), time.monotonic()
        peak_rss_kb = 0
        while time.monotonic() - start_t < seconds:
            time.sleep(0.5)
            if not agent.running():
                raise RuntimeError(f"agent exited: see {agent.log}")
            peak_rss_kb = max(peak_rss_kb, proc_kb(pid, "VmHWM"))
        elapsed = time.monotonic() - start_t
        end_io = proc_io(pid)
        self.cpu_pct = 100 * (proc_cpu_s(pid) - start_cpu) / elapsed
        self.rss_mb = peak_rss_kb / 1024
        self.write_kb_s = (end_io["write_bytes"] - start_io["write_bytes"]) / 1000 / elapsed
        self.wchar_kb_s = (end_io["wchar"] - start_io["wchar"]) / 1000 / elapsed
        time.sleep(0.2)  # strace writes its line when the call returns
        syncs = agent.syncs_between(start_wall, start_wall + elapsed)
        self.syncs_s = None if syncs is None else syncs / elapsed

    def line(self) -> str:
        syncs = ("syncs not counted (strace missing: apt-get install strace)"
                 if self.syncs_s is None else f"{self.syncs_s:.2f} syncs/s")
        return (f"peak RSS {self.rss_mb:.1f} MB, CPU {self.cpu_pct:.2f} % of one core, "
                f"written {self.write_kb_s:.1f} KB/s (write_bytes; wchar "
                f"{self.wchar_kb_s:.1f} KB/s), {syncs}")


def sensors_toml(work: Path, devices: list[PtyDevice]) -> str:
    blocks = []
    for device in devices:
        driver = {Sds011Sim: "sds011", Pms5003Sim: "pms5003", Mhz19Sim: "mhz19"}[
            type(device.protocol)]
        blocks.append(f'[[sensors]]\ndriver = "{driver}"\nname = "{device.path.name}"\n'
                      f'port = "{device.path}"\ninterval_s = 1\n')
    for index in range(2):
        folder = work / "w1" / f"28-00000000000{index}"
        folder.mkdir(parents=True)
        (folder / "w1_slave").write_text(W1_SLAVE)
        blocks.append(f'[[sensors]]\ndriver = "ds18b20"\nname = "water{index}"\n'
                      f'devices_dir = "{work / "w1"}"\naddress = "{folder.name}"\n'
                      f"interval_s = 1\n")
    return "\n".join(blocks)


def bench_agent(work: Path, broker: Mosquitto, seconds: float) -> tuple[float, float, float]:
    protocols = [Sds011Sim(), Sds011Sim(), Sds011Sim(), Pms5003Sim(), Pms5003Sim(),
                 Pms5003Sim(), Mhz19Sim(), Mhz19Sim()]
    devices = [PtyDevice(work / f"tty{i}", p) for i, p in enumerate(protocols)]
    for device in devices:
        device.plug()
    for protocol in protocols:  # active streaming would cost this process CPU, not the agent's
        if isinstance(protocol, Sds011Sim | Pms5003Sim):
            protocol.period_s = 1.0
    config = work / "edge.toml"
    config.write_text(f'site = "bench"\ndevice = "pi"\n[mqtt]\nurl = "{broker.url}"\n'
                      f'[buffer]\npath = "{work / "agent-buffer.db"}"\n'
                      "[publish]\nconfirm = false\n\n"  # a broker and no hub to confirm
                      + sensors_toml(work, devices))
    counter = Counter(broker.port)
    agent = Agent(config, work / "agent.log")
    try:
        time.sleep(WARMUP_S)
        start_count = counter.readings
        figures = Figures(agent, seconds)
        received = counter.readings - start_count
    finally:
        agent.stop()
        counter.close()
        for device in devices:
            device.unplug()
    print(f"agent, 10 sensors at 1 Hz for {seconds:g} s: {figures.line()}; "
          f"{received} readings reached the broker ({received / seconds:.1f}/s, expected "
          f"about {EXPECTED_RATE_PER_S}/s)")
    return figures.rss_mb, figures.cpu_pct, received / seconds


def bench_wear(work: Path, broker: Mosquitto, seconds: float,
               commit_interval_s: float | None) -> Figures:
    """10 simulated environment sensors at 1 Hz: 60 readings/s through the buffer."""
    name = "default" if commit_interval_s is None else f"{commit_interval_s:g}"
    folder = work / f"wear-{name}"
    folder.mkdir()
    setting = "" if commit_interval_s is None else f"commit_interval_s = {commit_interval_s}\n"
    config = folder / "edge.toml"
    config.write_text(f'site = "bench"\ndevice = "wear"\n[mqtt]\nurl = "{broker.url}"\n'
                      f'[buffer]\npath = "{folder / "buffer.db"}"\n{setting}'
                      "[publish]\nconfirm = false\n\n"  # no hub: the broker's PUBACK confirms
                      + "".join(f'[[sensors]]\ndriver = "simulated"\nname = "env{i}"\n'
                                f"interval_s = 1\n" for i in range(10)))
    counter = Counter(broker.port)
    agent = Agent(config, folder / "agent.log")
    try:
        time.sleep(WARMUP_S)
        start_count = counter.readings
        figures = Figures(agent, seconds)
        received = counter.readings - start_count
    finally:
        agent.stop()
        counter.close()
    print(f"agent, 10 simulated sensors at 1 Hz, commit_interval_s {name}, {seconds:g} s: "
          f"{figures.line()}; {received / seconds:.1f} readings/s reached the broker")
    return figures


def bench_drain(work: Path, broker: Mosquitto, count: int) -> tuple[float, int]:
    buffer = Buffer(work / "drain-buffer.db")
    base_ms = now_ms() - count
    chunk = 5_000
    for start in range(0, count, chunk):
        buffer.put([Reading("bench", "pi", "dust", "pm2_5", float(i % 500) / 10, base_ms + i)
                    for i in range(start, min(count, start + chunk))])
    assert len(buffer) == count
    counter = Counter(broker.port)
    cfg = PublishConfig(confirm=False)  # a broker and no hub: nobody would confirm
    publisher = Publisher("bench", "pi", buffer, MqttConfig(url=broker.url), cfg)
    started = time.monotonic()
    publisher.start()
    try:
        while len(buffer) > 0:
            time.sleep(0.01)
            if time.monotonic() - started > 120:
                raise RuntimeError(f"drain stalled with {len(buffer)} readings left")
        drain_s = time.monotonic() - started
        deadline = time.monotonic() + 10
        while counter.readings < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        publisher.stop()
        counter.close()
        buffer.close()
    print(f"drain {count} buffered readings (batch {cfg.batch_size}, in flight "
          f"{cfg.max_inflight}): {drain_s:.2f} s ({count / drain_s:,.0f} readings/s, target "
          f"<= {TARGET_DRAIN_S:g} s), subscriber received {counter.readings}")
    return drain_s, counter.readings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--drain", type=int, default=100_000)
    parser.add_argument("--commit-interval", type=float, action="append", default=None,
                        help="[buffer] commit_interval_s of the 60 readings/s agent "
                             "(repeat to compare; default: the agent's default)")
    args = parser.parse_args()
    conditions()
    with tempfile.TemporaryDirectory(prefix="fabcity-bench-edge-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        try:
            rss_mb, cpu_pct, rate = bench_agent(work, broker, args.seconds)
            wear = [bench_wear(work, broker, args.seconds, interval)
                    for interval in (args.commit_interval or [None])]
            drain_s, drained = bench_drain(work, broker, args.drain)
        finally:
            broker.stop()
    misses = [what for what, missed in (
        (f"peak RSS {rss_mb:.1f} MB > {TARGET_RSS_MB:g}", rss_mb > TARGET_RSS_MB),
        (f"CPU {cpu_pct:.2f} % > {TARGET_CPU_PCT:g}", cpu_pct > TARGET_CPU_PCT),
        (f"only {rate:.1f} readings/s reached the broker (expected about "
         f"{EXPECTED_RATE_PER_S})", rate < 0.9 * EXPECTED_RATE_PER_S),
        (f"drain {drain_s:.2f} s > {TARGET_DRAIN_S:g}", drain_s > TARGET_DRAIN_S),
        (f"60 readings/s wrote {wear[-1].write_kb_s:.1f} KB/s > {TARGET_WRITE_KB_S:g}",
         wear[-1].write_kb_s > TARGET_WRITE_KB_S),
        (f"60 readings/s synced {wear[-1].syncs_s or 0:.2f}/s > {TARGET_SYNCS_S:g}",
         (wear[-1].syncs_s or 0) > TARGET_SYNCS_S),
        (f"the subscriber received {drained} of {args.drain} drained readings",
         drained != args.drain),
    ) if missed]
    print("all targets met" if not misses else "TARGET MISSED: " + "; ".join(misses))
    return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
