"""Sensor drivers. Each registers under the ``fabcity.drivers`` entry point group."""

from edge.drivers.base import EventDriver, PolledDriver, Sample, SensorDriver, create_driver

__all__ = ["EventDriver", "PolledDriver", "Sample", "SensorDriver", "create_driver"]
