"""One exception root for the project, mixed with the built-in it behaves like."""

__all__ = [
    "BadReading",
    "ConfigError",
    "DriverError",
    "FabcityError",
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
