"""The edge agent: drivers -> sampler -> durable buffer -> publisher."""

import logging
import signal
import threading
from types import FrameType

from edge.buffer import Buffer
from edge.config import EdgeSettings
from edge.drivers.base import SensorDriver, create_driver
from edge.homeassistant import discovery_messages
from edge.publisher import Publisher
from edge.quality import DeviceQuality, SensorQuality
from edge.sampler import Sampler
from fabcity import __version__
from fabcity.device import DeviceMeta, SensorMeta
from fabcity.reading import Reading

__all__ = ["EdgeAgent", "build_meta"]

log = logging.getLogger(__name__)


def build_meta(settings: EdgeSettings, drivers: list[SensorDriver]) -> DeviceMeta:
    """The retained ``meta`` message describing this device and its sensors."""
    return DeviceMeta(
        site=settings.site, device=settings.device, kind=settings.kind, version=__version__,
        name=settings.name or None, location=settings.location,
        sensors=[SensorMeta(name=d.name, driver=d.config.driver, metrics=d.metrics())
                 for d in drivers])


class EdgeAgent:
    """Everything one Raspberry Pi runs; build with settings, then :meth:`run`."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.drivers = [create_driver(sensor) for sensor in settings.sensors]
        self.quality = DeviceQuality(settings.quality)
        transforms = [SensorQuality(sensor, self.quality) for sensor in settings.sensors]
        self.buffer = Buffer(settings.buffer.path, settings.buffer.max_readings,
                             settings.buffer.synchronous, settings.buffer.commit_interval_s,
                             settings.buffer.spool_dir)
        self.publisher = Publisher(settings.site, settings.device, self.buffer, settings.mqtt,
                                   settings.publish, meta=build_meta(settings, self.drivers))
        self._describe_lock = threading.Lock()
        if settings.homeassistant.discovery:
            for topic, payload in self._discovery_messages():
                self.publisher.retain(topic, payload)
        self.sampler = Sampler(settings.site, settings.device, self._store,
                               on_open=self._driver_opened)
        for driver, sensor, transform in zip(self.drivers, settings.sensors, transforms,
                                             strict=True):
            self.sampler.add(driver, sensor.interval_s, transform)
        self._stopped = threading.Event()

    def _discovery_messages(self) -> list[tuple[str, bytes]]:
        return discovery_messages(
            self.settings, {driver.name: driver.metrics() for driver in self.drivers})

    def _driver_opened(self, _driver: SensorDriver) -> None:
        # A driver that learns its metrics from the device (``firmware``) knows them now:
        # describe the device again, to the hub and to Home Assistant.
        with self._describe_lock:
            self.publisher.set_meta(build_meta(self.settings, self.drivers))
            if self.settings.homeassistant.discovery:
                for topic, payload in self._discovery_messages():
                    self.publisher.retain(topic, payload)  # published only if new or changed

    def _store(self, readings: list[Reading]) -> None:
        self.buffer.put(readings)
        self.publisher.wake()

    def start(self) -> None:
        """Start publishing and sampling; returns at once."""
        sensors = len(self.drivers)
        log.info("edge agent %s/%s: %d sensor%s, %d readings buffered, broker %s",
                 self.settings.site, self.settings.device, sensors, "" if sensors == 1 else "s",
                 len(self.buffer), self.publisher.address)
        self.publisher.start()
        self.sampler.start()

    def stop(self) -> None:
        """Stop sampling, flush what the broker acknowledged, disconnect."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.sampler.stop()
        self.publisher.stop()
        self.buffer.close()
        log.info("edge agent stopped")

    def run(self) -> None:
        """Run until SIGINT or SIGTERM."""
        done = threading.Event()

        def handle(_signum: int, _frame: FrameType | None) -> None:
            done.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        self.start()
        try:
            done.wait()
        finally:
            self.stop()
