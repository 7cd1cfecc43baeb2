"""``fabcity edge``: run the agent, check the sensors, list the drivers."""

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edge.config import load_edge_settings
from edge.drivers.base import EventDriver, PolledDriver, SensorDriver, create_driver
from edge.quality import DeviceQuality, SensorQuality
from edge.sampler import to_readings
from fabcity import plugins
from fabcity.codec import reading_to_dict

__all__ = ["register"]

PARENT_POLL_S = 1.0


def register(subparsers: Any) -> None:
    """Add ``edge`` and its sub-commands to the ``fabcity`` parser."""
    edge = subparsers.add_parser("edge", help="run an edge agent on a Raspberry Pi",
                                 description="The edge agent: read sensors, buffer, publish.")
    commands = edge.add_subparsers(title="commands", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="read sensors and publish until stopped")
    run.add_argument("--config", "-c", type=Path, required=True, help="edge.toml")
    run.add_argument("--parent-pid", type=int, metavar="PID",
                     help="stop cleanly once process PID, which started this one, is gone "
                          "(the agents of `fabcity demo` use it)")
    run.set_defaults(func=_run)

    check = commands.add_parser("check", help="read every configured sensor once and exit")
    check.add_argument("--config", "-c", type=Path, required=True, help="edge.toml")
    check.add_argument("--json", action="store_true", help="one JSON reading per line")
    check.set_defaults(func=_check)

    drivers = commands.add_parser("drivers", help="list every installed driver")
    drivers.add_argument("--json", action="store_true", help="machine-readable output")
    drivers.set_defaults(func=_drivers)


def _run(args: argparse.Namespace) -> int:
    from edge.agent import EdgeAgent

    agent = EdgeAgent(load_edge_settings(args.config))
    if args.parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True,
                         name="parent-watch").start()
    agent.run()
    return 0


def _exit_with_parent(parent_pid: int) -> None:
    """Send ourselves SIGTERM (a clean stop) once ``parent_pid`` is no longer our parent
    (when it dies, the kernel hands us to another process)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _read_once(driver: SensorDriver) -> list[Any]:
    if isinstance(driver, PolledDriver):
        return driver.read()
    if isinstance(driver, EventDriver) and hasattr(driver, "current"):
        return list(driver.current())
    return []


def _check(args: argparse.Namespace) -> int:
    settings = load_edge_settings(args.config)
    failed = []
    quality = DeviceQuality(settings.quality)
    for sensor in settings.sensors:
        try:
            driver = create_driver(sensor)
            calibrate = SensorQuality(sensor, quality)
            driver.open()
            try:
                readings = calibrate(to_readings(settings.site, settings.device, driver,
                                                 _read_once(driver)))
            finally:
                driver.close()
        except Exception as exc:
            failed.append(sensor.name)
            where = f"sensor {sensor.name!r} ({sensor.driver})"
            message = str(exc)
            if message.startswith(where):  # config errors already name the sensor
                message = message[len(where):].lstrip(": ")
            print(f"{where}: error: {message}", file=sys.stderr)
            continue
        for reading in readings:
            if args.json:
                print(json.dumps({"site": reading.site, "device": reading.device,
                                  **reading_to_dict(reading)}))
            else:
                flags = f"  [{', '.join(reading.flags)}]" if reading.flags else ""
                print(f"{reading.sensor:<16} {reading.metric:<14} {reading.value:>12g} "
                      f"{reading.unit}{flags}")
    if failed:
        print(f"fabcity edge check: {len(failed)} sensor(s) failed: {', '.join(failed)}",
              file=sys.stderr)
    broker_ok = _check_broker(settings, args.json)
    return 1 if failed or not broker_ok else 0


def _check_broker(settings: Any, as_json: bool) -> bool:
    """The last line of ``edge check``: can this agent reach its broker and log in?"""
    from fabcity.link import check_broker
    from fabcity.mqtt import parse_broker_url

    mqtt = settings.mqtt
    ok, message = check_broker(parse_broker_url(mqtt.url), mqtt.username, mqtt.password,
                               mqtt.ca_file)
    if as_json:
        print(json.dumps({"broker": mqtt.url, "reachable": ok, "message": message}))
    else:
        print(f"broker {mqtt.url}: {'ok' if ok else 'FAILED'}: {message}",
              file=sys.stdout if ok else sys.stderr)
    return ok


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("pathlib.", "")


def _default_text(value: Any) -> str:
    return str(value) if isinstance(value, Path) else repr(value)


def _describe(name: str) -> dict[str, Any]:
    cls = plugins.load("fabcity.drivers", name)
    options = {
        key: {"type": _type_name(field.annotation),
              "default": None if field.is_required() else _default_text(field.default),
              "required": field.is_required(), "help": field.description}
        for key, field in cls.Options.model_fields.items()
    }
    return {"driver": name, "summary": cls.summary, "metrics": dict(cls.METRICS),
            "options": options}


def _drivers(args: argparse.Namespace) -> int:
    rows = []
    for name in plugins.available("fabcity.drivers"):
        try:
            rows.append(_describe(name))
        except Exception as exc:  # a broken plugin must not hide the others
            rows.append({"driver": name, "error": f"cannot load: {exc}"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        if "error" in row:
            print(f"{row['driver']}: {row['error']}")
            continue
        print(f"{row['driver']}: {row['summary']}")
        metrics = ", ".join(f"{m} [{u}]" for m, u in row["metrics"].items())
        print(f"    metrics: {metrics or '(announced by the device)'}")
        for key, opt in row["options"].items():
            default = "required" if opt["required"] else f"default {opt['default']}"
            help_text = f" {opt['help']}" if opt["help"] else ""
            print(f"    {key}: {opt['type']} ({default}){help_text}")
    return 0
