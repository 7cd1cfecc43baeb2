"""A microcontroller running fabcity firmware, on USB serial: every channel it announces in
its HELLO becomes a metric, with no per-channel configuration.

Metric names: a channel's metric keeps its own name (``temperature``, ``co2``) when no other
channel of the device reports the same metric, so the catalogue's units and ranges apply;
channels sharing a metric are told apart by their sensor, ``a0_voltage`` and ``a1_voltage``.
``metric_names = "qualified"`` always writes ``<sensor>_<metric>``. Timestamps are the
device's uptime mapped to UTC by the session. The sensor's ``interval_s`` is sent to the
device after every handshake (``INTERVAL``).
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.config import SensorConfig
from edge.drivers.base import EventDriver, Sample
from firmware_bridge.messages import MAX_INTERVAL_MS, MIN_INTERVAL_MS, Channel, DeviceError, Hello
from firmware_bridge.messages import Readings as ReadingsMessage
from firmware_bridge.session import (
    DEFAULT_BAUDRATE,
    Connected,
    DeviceSession,
    Disconnected,
    LinkEvent,
    Received,
    Refused,
)

__all__ = ["FirmwareDriver", "FirmwareOptions", "metric_names"]

log = logging.getLogger(__name__)


class FirmwareOptions(BaseModel):
    """Options of the ``firmware`` driver."""

    model_config = ConfigDict(extra="forbid")

    port: str = Field(description="serial port, e.g. /dev/serial/by-id/usb-Arduino...")
    baudrate: int = Field(DEFAULT_BAUDRATE, gt=0)
    handshake_timeout_s: float = Field(3.0, gt=0, le=60)
    reconnect_interval_s: float = Field(1.0, gt=0, le=300)
    metric_names: Literal["auto", "qualified"] = "auto"
    set_interval: bool = Field(True, description="send the sensor's interval_s to the device")


def metric_names(channels: tuple[Channel, ...], style: str = "auto") -> list[str]:
    """The metric each channel's readings are stored under (see the module docstring)."""
    shared = Counter(c.metric for c in channels)
    return [
        c.metric if style == "auto" and shared[c.metric] == 1 else f"{c.sensor}_{c.metric}"
        for c in channels
    ]


class FirmwareDriver(EventDriver[FirmwareOptions]):
    """Readings from a microcontroller speaking the fabcity firmware protocol."""

    Options = FirmwareOptions
    summary = "microcontroller running fabcity firmware (channels announced by the device)"

    def __init__(self, config: SensorConfig, options: FirmwareOptions) -> None:
        super().__init__(config, options)
        after: list[tuple[str, dict[str, str | int]]] = []
        if options.set_interval:
            interval_ms = min(max(round(config.interval_s * 1000), MIN_INTERVAL_MS),
                              MAX_INTERVAL_MS)
            after.append(("INTERVAL", {"ms": interval_ms}))
        self.session = DeviceSession(
            options.port,
            baudrate=options.baudrate,
            handshake_timeout_s=options.handshake_timeout_s,
            reconnect_interval_s=options.reconnect_interval_s,
            on_event=self._on_event,
            after_handshake=after,
        )
        self._lock = threading.Lock()
        self._emit: Callable[[list[Sample]], None] | None = None
        self._names: list[str] = []
        self._units: dict[str, str] = {}
        self._learned_from: Hello | None = None
        self._opened = False

    def metrics(self) -> dict[str, str]:
        """Metric -> unit from the device's HELLO (handshaking first if still closed)."""
        if not self._opened:
            try:
                self.open()
            except Exception as exc:  # the agent describes what it can; open() retries later
                log.warning("sensor %r: metrics unknown until the device answers: %s",
                            self.name, exc)
        with self._lock:
            return dict(self._units)

    def open(self) -> None:
        if self._opened:
            return
        hello = self.session.open()
        assert hello is not None
        self._learn(hello)
        self._opened = True

    def start(self, emit: Callable[[list[Sample]], None]) -> None:
        self._emit = emit

    def close(self) -> None:
        self._emit = None
        self._opened = False
        self.session.close()

    def _learn(self, hello: Hello) -> None:
        names = metric_names(hello.channels, self.options.metric_names)
        units = {name: c.unit for name, c in zip(names, hello.channels, strict=True)}
        with self._lock:
            changed = bool(self._units) and units != self._units
            self._names, self._units, self._learned_from = names, units, hello
        if changed:
            log.warning("sensor %r: device %s now announces other channels (%s); restart the "
                        "agent to republish its description", self.name, hello.device,
                        ", ".join(c.label for c in hello.channels))

    def _on_event(self, event: LinkEvent) -> None:
        if isinstance(event, Received):
            message = event.message
            if isinstance(message, ReadingsMessage):
                self._readings(message, event.ts_ms, event.hello)
            elif isinstance(message, DeviceError) and message.ref is None:
                where = f" on channel {message.channel}" if message.channel is not None else ""
                log.warning("sensor %r: device reports %s%s", self.name, message.code, where)
            elif isinstance(message, DeviceError):
                log.warning("sensor %r: device refused a setting: %s", self.name, message.code)
        elif isinstance(event, Connected):
            self._learn(event.hello)
        elif isinstance(event, Refused):
            log.error("sensor %r: %s", self.name, event.error)
        elif isinstance(event, Disconnected):
            log.warning("sensor %r: %s: %s", self.name, self.options.port, event.reason)

    def _readings(self, message: ReadingsMessage, ts_ms: int | None, hello: Hello | None) -> None:
        emit = self._emit
        if emit is None or hello is None:
            return  # not started, or readings before the handshake: channels unknown
        if hello is not self._learned_from:
            self._learn(hello)
        with self._lock:
            names = self._names
        samples = [
            Sample(names[index], value, ts_ms)
            for index, value in message.values.items()
            if index < len(names)
        ]
        if samples:
            emit(samples)
