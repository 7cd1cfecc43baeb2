"""Driver layers: ``SensorDriver`` -> ``PolledDriver`` / ``EventDriver`` -> a leaf driver.

A leaf says only how to read. The sampler owns timing, timestamps, buffering and errors:
a polled driver returns samples from :meth:`PolledDriver.read`; an event driver calls
``emit`` from :meth:`EventDriver.start` whenever something happens.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from edge.config import SensorConfig
from fabcity import plugins
from fabcity.config import format_validation_error
from fabcity.errors import ConfigError

__all__ = ["EventDriver", "NoOptions", "PolledDriver", "Sample", "SensorDriver", "create_driver"]


@dataclass(frozen=True, slots=True)
class Sample:
    """A raw value from a driver; the sampler turns it into a :class:`fabcity.reading.Reading`.

    ``ts_ms=None`` means "now"; drivers that know better (an event, a device clock) set it.
    """

    metric: str
    value: float
    ts_ms: int | None = None
    flags: tuple[str, ...] = ()


class NoOptions(BaseModel):
    """Options model of a driver that takes none."""

    model_config = ConfigDict(extra="forbid")


class SensorDriver(ABC):  # noqa: B024 - abstract through its two subclasses
    """Base of every driver: options, metrics, and the open/close life cycle."""

    #: Validated model of the driver's own keys in ``[[sensors]]`` (``port``/``pin`` included
    #: when the driver uses them).
    Options: ClassVar[type[BaseModel]] = NoOptions
    #: One line for ``fabcity edge drivers``.
    summary: ClassVar[str] = ""
    #: Metric -> unit this driver reports (a driver that learns its metrics at run time,
    #: like ``firmware``, overrides :meth:`metrics`).
    METRICS: ClassVar[dict[str, str]] = {}

    def __init__(self, config: SensorConfig, options: BaseModel) -> None:
        self.config = config
        self.name = config.name
        self.options = options

    @classmethod
    def from_config(cls, config: SensorConfig) -> Self:
        """Validate the driver's options; errors name the sensor and the field."""
        raw = config.options
        for key in ("port", "pin"):
            value = getattr(config, key)
            if value is not None and key in cls.Options.model_fields:
                raw[key] = value
            elif value is not None:
                raise ConfigError(
                    f"sensor {config.name!r} ({config.driver}): {key}: this driver takes no {key}"
                )
        try:
            options = cls.Options.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(f"sensor {config.name!r} ({config.driver})", exc)
            ) from None
        return cls(config, options)

    def metrics(self) -> dict[str, str]:
        """Metric -> unit of this instance."""
        return dict(self.METRICS)

    def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the hardware; raise :class:`fabcity.errors.DriverError` if it is absent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware. Must be safe to call twice."""


class PolledDriver(SensorDriver):
    """A sensor read every ``interval_s`` by the sampler."""

    @abstractmethod
    def read(self) -> list[Sample]:
        """Read once; raise :class:`fabcity.errors.DriverError` on failure."""


class EventDriver(SensorDriver):
    """A sensor that reports changes itself (door, button, PIR)."""

    @abstractmethod
    def start(self, emit: Callable[[list[Sample]], None]) -> None:
        """Begin watching; call ``emit`` from any thread for every change."""


def create_driver(config: SensorConfig) -> SensorDriver:
    """Instantiate the registered driver named by ``config.driver``."""
    try:
        cls = plugins.load("fabcity.drivers", config.driver)
    except ConfigError as exc:
        raise ConfigError(f"sensor {config.name!r}: driver: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, SensorDriver)):
        raise ConfigError(f"sensor {config.name!r}: {config.driver!r} is not a sensor driver")
    return cls.from_config(config)
