"""Driver layers: ``SensorDriver`` -> ``PolledDriver`` / ``EventDriver`` -> a leaf driver.

A leaf says only how to read. The sampler owns timing, timestamps, buffering and errors:
a polled driver returns samples from :meth:`PolledDriver.read`; an event driver calls
``emit`` from :meth:`EventDriver.start` whenever something happens.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, Self, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import TypeVar  # default= (PEP 696) is in typing from 3.13

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


#: The options model of a driver: ``self.options`` has this type. Covariant, so every driver
#: is a plain ``SensorDriver`` (options of any model) to the sampler and the agent.
O = TypeVar("O", bound=BaseModel, covariant=True, default=BaseModel)  # noqa: E741


class SensorDriver(ABC, Generic[O]):
    """Base of every driver: options, metrics, and the open/close life cycle.

    A leaf names its options model twice: as the type parameter (``PolledDriver[XOptions]``,
    so ``self.options`` is typed) and as ``Options`` (the class that validates the
    ``[[sensors]]`` keys at run time). :meth:`__init_subclass__` checks the two agree.
    """

    #: Validated model of the driver's own keys in ``[[sensors]]`` (``port``/``pin`` included
    #: when the driver uses them).
    Options: ClassVar[type[BaseModel]] = NoOptions
    #: One line for ``fabcity edge drivers``.
    summary: ClassVar[str] = ""
    #: Metric -> unit this driver reports (a driver that learns its metrics at run time,
    #: like ``firmware``, overrides :meth:`metrics`).
    METRICS: ClassVar[dict[str, str]] = {}

    def __init__(self, config: SensorConfig, options: O) -> None:
        self.config = config
        self.name = config.name
        self.options: O = options

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Refuse a driver whose ``Options`` does not build its declared options type."""
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            origin, args = get_origin(base), get_args(base)
            if not (isinstance(origin, type) and issubclass(origin, SensorDriver) and args):
                continue
            declared = args[0]
            if isinstance(declared, type) and not issubclass(cls.Options, declared):
                raise TypeError(
                    f"{cls.__qualname__}.Options is {cls.Options.__qualname__}, "
                    f"not a {declared.__qualname__} as {base} declares"
                )

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
        # Options builds an O: __init_subclass__ checked it against the declared parameter.
        return cls(config, cast(O, options))

    def metrics(self) -> dict[str, str]:
        """Metric -> unit of this instance."""
        return dict(self.METRICS)

    def open(self) -> None:
        """Acquire the hardware; raise :class:`fabcity.errors.DriverError` if it is absent."""

    def close(self) -> None:
        """Release the hardware. Must be safe to call twice."""


class PolledDriver(SensorDriver[O]):
    """A sensor read every ``interval_s`` by the sampler."""

    @abstractmethod
    def read(self) -> list[Sample]:
        """Read once; raise :class:`fabcity.errors.DriverError` on failure."""


class EventDriver(SensorDriver[O]):
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
