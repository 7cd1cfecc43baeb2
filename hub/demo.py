"""``fabcity demo``: the whole system on one machine with simulated sensors.

An embedded MQTT broker (unless ``--mqtt-url``), the hub on SQLite, and simulated edge agents
as child processes (``fabcity edge run``) for two sites: a fablab with machines and a street
with air-quality poles. Ctrl-C stops everything.
"""

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.config import load_hub_settings
from hub.service import HubService, check_port_free

__all__ = ["DEMO_DEVICES", "register"]


@dataclass(frozen=True)
class DemoDevice:
    """One simulated edge agent of the demo."""

    site: str
    device: str
    kind: str
    name: str
    lat: float
    lon: float
    sensors: tuple[tuple[str, str], ...]  # (sensor name, simulated profile)


MIN_INTERVAL_S = 0.05

DEMO_DEVICES = (
    DemoDevice("fablab-poblenou", "pi-laser", "machine", "Laser cutter bay", 41.3989, 2.1971,
               (("laser", "machine"), ("extractor", "machine"), ("air", "environment"))),
    DemoDevice("fablab-poblenou", "pi-printers", "machine", "3D printer farm", 41.3990, 2.1973,
               (("printer_1", "machine"), ("printer_2", "machine"))),
    DemoDevice("street-pujades", "pole-01", "environment", "Pujades / Llacuna", 41.4002, 2.1995,
               (("air", "environment"),)),
    DemoDevice("street-pujades", "pole-02", "environment", "Pujades / Badajoz", 41.3979, 2.1937,
               (("air", "environment"),)),
)


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``fabcity`` parser."""
    demo = subparsers.add_parser(
        "demo", help="run broker, hub, dashboard and simulated sensors on this machine",
        description="Run the whole system locally: an embedded MQTT broker (or --mqtt-url), "
                    "the hub on SQLite, simulated edge agents for a fablab and a street, and "
                    "the citizen page. Ctrl-C stops everything.")
    demo.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    demo.add_argument("--mqtt-url", help="use this broker instead of the embedded one")
    demo.add_argument("--data-dir", type=Path, default=Path("demo-data"),
                      help="where the hub database, edge buffers and logs go (default ./demo-data)")
    demo.add_argument("--interval", type=_interval, default=2.0,
                      help="seconds between simulated readings (default 2, at least 0.05)")
    demo.set_defaults(func=_demo)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not MIN_INTERVAL_S <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} s is outside {MIN_INTERVAL_S}..3600 s")
    return value


def edge_config(device: DemoDevice, broker_url: str, data_dir: Path, interval_s: float) -> str:
    """The ``edge.toml`` of one simulated device."""
    lines = [
        f'site = "{device.site}"', f'device = "{device.device}"', f'kind = "{device.kind}"',
        f'name = "{device.name}"', f"location = {{ lat = {device.lat}, lon = {device.lon} }}",
        "[mqtt]", f'url = "{broker_url}"',
        "[buffer]", f'path = "{data_dir / f"edge-{device.site}-{device.device}.db"}"',
    ]
    for sensor, profile in device.sensors:
        lines += ["[[sensors]]", 'driver = "simulated"', f'name = "{sensor}"',
                  f'profile = "{profile}"', f"interval_s = {interval_s}"]
        if sensor == "extractor":
            lines.append("running_power_w = 350.0")
        elif sensor.startswith("printer"):
            lines += ["running_power_w = 180.0", "idle_power_w = 8.0"]
    return "\n".join(lines) + "\n"


def _demo(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    settings = load_hub_settings(None, {
        "api.host": ("--host", args.host),
        "api.port": ("--port", args.port),
        "mqtt.url": ("--mqtt-url", args.mqtt_url),
        "storage.backend": ("(demo)", "sqlite"),
        "storage.path": ("--data-dir", str(data_dir / "hub.db")),
    })
    check_port_free(settings.api.host, settings.api.port)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    service = HubService(settings)
    edges: list[subprocess.Popen[bytes]] = []

    def start_edges() -> None:
        for device in DEMO_DEVICES:
            config = data_dir / f"edge-{device.site}-{device.device}.toml"
            config.write_text(edge_config(device, service.broker_url, data_dir, args.interval))
            log = (logs / f"edge-{device.device}.log").open("ab")
            edges.append(subprocess.Popen(
                [sys.executable, "-m", "fabcity", "edge", "run", "--config", str(config),
                 "--parent-pid", str(os.getpid())],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True))  # Ctrl-C goes to us; we stop them in order
        url = f"http://{settings.api.host}:{settings.api.port}"
        print(f"\n  fabcity demo is running: {url}\n"
              f"    citizen page   {url}/\n"
              f"    API docs       {url}/docs\n"
              f"    metrics        {url}/metrics\n"
              f"    MQTT broker    {service.broker_url}"
              f"{' (embedded)' if service.broker else ''}\n"
              f"    data and logs  {data_dir}\n"
              f"  {len(edges)} simulated edge agents publish every {args.interval:g} s. "
              f"Ctrl-C stops everything.\n", flush=True)

    def stop_edges() -> None:
        for proc in edges:
            proc.terminate()
        for proc in edges:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        print("fabcity demo stopped.", flush=True)

    service.serve(on_started=start_edges, on_stopping=stop_edges)
    return 0
