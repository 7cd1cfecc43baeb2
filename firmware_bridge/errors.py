"""Errors of the firmware bridge, rooted in :mod:`fabcity.errors`."""

from fabcity.errors import DriverError, FabcityError

__all__ = [
    "CommandRejected",
    "CommandTimeout",
    "DeviceUnavailable",
    "ProtocolError",
    "UnsupportedProtocol",
]


class ProtocolError(FabcityError, ValueError):
    """A frame or message breaks the firmware protocol."""


class UnsupportedProtocol(ProtocolError):
    """The device speaks a protocol major version this host does not understand."""


class DeviceUnavailable(DriverError):
    """The serial port cannot be opened, or the device does not answer the handshake."""


class CommandTimeout(DriverError, TimeoutError):
    """A command got no answer in time."""


class CommandRejected(DriverError):
    """The device answered a command with an ERR frame; ``code`` is its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
