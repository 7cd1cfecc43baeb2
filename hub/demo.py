"""``fabcity demo``: the whole system on one machine with simulated sensors.

An embedded MQTT broker (unless ``--mqtt-url``), the hub on SQLite, and simulated edge agents
as child processes (``fabcity edge run``) for two declared sites: a fablab with machines and a
street with air-quality poles. Before the agents start, days of history from the same
simulation are written into the hub's storage (:mod:`hub.demo_history`). Ctrl-C stops
everything.

The demo is the one place that runs both roles: it writes each agent's ``edge.toml`` from the
edge's own configuration models (imported lazily, so ``fabcity hub`` never loads them).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fabcity.device import Location
from hub.config import SiteConfig, load_hub_settings
from hub.service import HubService, check_port_free

if TYPE_CHECKING:
    from edge.config import EdgeSettings, SensorConfig

__all__ = ["DEMO_DEVICES", "DEMO_SITES", "demo_sensors", "edge_settings", "episodes",
           "register", "to_toml"]


@dataclass(frozen=True)
class DemoDevice:
    """One simulated edge agent of the demo."""

    site: str
    device: str
    kind: Literal["environment", "machine", "mixed"]
    name: str
    lat: float
    lon: float
    #: (sensor name, options of the ``simulated`` driver)
    sensors: tuple[tuple[str, dict[str, Any]], ...]


MIN_INTERVAL_S = 0.05
EPISODE_HOURS = 4.0  # pollution episodes on the street
_STREET = {"profile": "environment", "episode_hours": EPISODE_HOURS}

DEMO_SITES = (
    SiteConfig(id="fablab-poblenou", name="Fab Lab Poblenou", kind="fablab",
               lat=41.3989, lon=2.1972,
               description="A community fablab in a former textile mill: a laser cutter with its "
                           "fume extractor and a 3D printer farm. Open Monday to Friday "
                           "9:00-20:00 and Saturday 10:00-14:00.",
               licence="CC-BY-4.0"),
    SiteConfig(id="street-pujades", name="Carrer de Pujades", kind="street",
               lat=41.3991, lon=2.1966,
               description="Two air-quality poles on a busy street: particulates, CO2, noise, "
                           "temperature and humidity, with the morning and evening rush hours.",
               licence="ODbL-1.0"),
)

DEMO_DEVICES = (
    DemoDevice("fablab-poblenou", "pi-laser", "machine", "Laser cutter bay", 41.3989, 2.1971,
               (("laser", {"profile": "machine", "seed": 1, "running_power_w": 1400.0,
                           "idle_power_w": 25.0, "installed": "2024-03-11",
                           "job_minutes": [5.0, 45.0]}),
                ("extractor", {"profile": "machine", "seed": 2, "running_power_w": 350.0,
                               "idle_power_w": 6.0, "installed": "2024-03-11",
                               "job_minutes": [20.0, 90.0]}),
                ("air", {"profile": "environment", "seed": 3, "traffic": 0.3}))),
    DemoDevice("fablab-poblenou", "pi-printers", "machine", "3D printer farm", 41.3990, 2.1973,
               (("printer_1", {"profile": "machine", "seed": 4, "running_power_w": 180.0,
                               "idle_power_w": 8.0, "installed": "2024-09-02",
                               "job_minutes": [40.0, 300.0]}),
                ("printer_2", {"profile": "machine", "seed": 5, "running_power_w": 210.0,
                               "idle_power_w": 9.0, "installed": "2025-05-19",
                               "job_minutes": [30.0, 240.0]}))),
    DemoDevice("street-pujades", "pole-01", "environment", "Pujades / Llacuna", 41.4002, 2.1995,
               (("air", {**_STREET, "seed": 6, "traffic": 1.0}),)),
    DemoDevice("street-pujades", "pole-02", "environment", "Pujades / Badajoz", 41.3979, 2.1937,
               (("air", {**_STREET, "seed": 7, "traffic": 0.8}),)),
)


def episodes(now_s: float) -> list[str]:
    """Starts of the street's pollution episodes: one three days ago in the morning rush
    (inside the history), one that began half an hour before the demo started (live: PM2.5
    crosses 35.5 ug/m3 within minutes and stays above for hours)."""
    morning = (int(now_s) // 86_400 - 3) * 86_400 + 6 * 3600  # 07:00 local (UTC+1)
    live = int(now_s) // 60 * 60 - 30 * 60
    return [datetime.fromtimestamp(t, UTC).isoformat() for t in (morning, live)]


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
    demo.add_argument("--history-days", type=int, choices=range(31), default=7, metavar="DAYS",
                      help="days of simulated history written on start, one reading a minute "
                           "(default 7, 0 for none; a restart adds only what is missing)")
    demo.set_defaults(func=_demo)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not MIN_INTERVAL_S <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} s is outside {MIN_INTERVAL_S}..3600 s")
    return value


def demo_sensors(device: DemoDevice, interval_s: float, starts: Sequence[str],
                 ) -> list["SensorConfig"]:
    """The ``[[sensors]]`` of one simulated device, validated by the driver's options model
    (a renamed option fails here, not in a child process)."""
    from edge.config import SensorConfig
    from edge.drivers.simulated import SimulatedOptions

    sensors = []
    for name, raw in device.sensors:
        options = dict(raw)
        if "episode_hours" in options:
            options["episodes"] = list(starts)
        checked = SimulatedOptions.model_validate(options)
        sensors.append(SensorConfig.model_validate({
            "driver": "simulated", "name": name, "interval_s": interval_s,
            **checked.model_dump(mode="json", exclude_unset=True)}))
    return sensors


def edge_settings(device: DemoDevice, broker_url: str, data_dir: Path,
                  sensors: Sequence["SensorConfig"]) -> "EdgeSettings":
    """The settings of one simulated edge agent, built with the edge's own models."""
    from edge.config import BufferConfig, EdgeSettings, MqttConfig

    return EdgeSettings(
        site=device.site, device=device.device, kind=device.kind, name=device.name,
        location=Location(lat=device.lat, lon=device.lon), mqtt=MqttConfig(url=broker_url),
        buffer=BufferConfig(path=data_dir / f"edge-{device.site}-{device.device}.db"),
        sensors=list(sensors),
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                                for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() \
        else json.dumps(key)


def to_toml(settings: "EdgeSettings") -> str:
    """``edge.toml`` text of ``settings`` (the keys that were set): scalars, then tables,
    then arrays of tables."""
    data = settings.model_dump(mode="json", exclude_unset=True)
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables += ["", f"[{_toml_key(key)}]"]
            tables += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                tables += ["", f"[[{_toml_key(key)}]]"]
                tables += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


def _demo(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    settings = load_hub_settings(None, {
        "api.host": ("--host", args.host),
        "api.port": ("--port", args.port),
        "mqtt.url": ("--mqtt-url", args.mqtt_url),
        "mqtt.embedded_port": ("(demo)", 0),  # any free port: never take 1883 from a broker
        "storage.backend": ("(demo)", "sqlite"),
        "storage.path": ("--data-dir", str(data_dir / "hub.db")),
        "sites": ("(demo)", [site.model_dump() for site in DEMO_SITES]),
    })
    check_port_free(settings.api.host, settings.api.port)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    service = HubService(settings)
    now_s = time.time()
    starts = episodes(now_s)
    sensors = {d.device: demo_sensors(d, args.interval, starts) for d in DEMO_DEVICES}
    if args.history_days:
        from hub.demo_history import prefill

        print(f"Writing {args.history_days} days of simulated history into {settings.storage.path}",
              flush=True)
        agents = [(d.site, d.device, sensors[d.device]) for d in DEMO_DEVICES]
        prefill(service.storage, agents, now_s, rollups=service.rollup_state,
                days=args.history_days)
    edges: list[subprocess.Popen[bytes]] = []

    def start_edges() -> None:
        for device in DEMO_DEVICES:
            config = data_dir / f"edge-{device.site}-{device.device}.toml"
            config.write_text(to_toml(edge_settings(device, service.broker_url, data_dir,
                                                    sensors[device.device])))
            log = (logs / f"edge-{device.device}.log").open("ab")
            edges.append(subprocess.Popen(  # noqa: S603 - our own agents, no shell
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
