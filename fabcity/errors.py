"""One exception root for the project, mixed with the built-in it behaves like."""

__all__ = [
    "BadReading",
    "ConfigError",
    "DriverError",
    "FabcityError",
    "ReadingsRefused",
    "StorageUnavailable",
]


class FabcityError(Exception):
    """Root of every error fabcity raises on purpose."""


class BadReading(FabcityError, ValueError):
    """A payload, reading or name breaks the wire contract.

    ``reason`` is a short machine-readable key (``bad_json``, ``bad_name`` ...) used as the
    label of the rejection counter; the message says what was wrong for a human.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ConfigError(FabcityError, ValueError):
    """A configuration file, environment override or CLI argument is wrong."""


class DriverError(FabcityError, RuntimeError):
    """A sensor could not be read (unplugged, timed out, garbled)."""


class StorageUnavailable(FabcityError, ConnectionError):
    """The storage back-end cannot take writes right now; retry later."""


class ReadingsRefused(FabcityError, ValueError):
    """The storage back-end refused some readings of a batch for good (an InfluxDB 400
    partial write, a value it cannot take); retrying the same readings cannot succeed.

    The rest of the batch may have been stored. ``reason`` says why, for the dead letters.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
