"""The firmware bridge: microcontrollers on USB serial as first-class edge sensors.

``frame`` reads and writes protocol lines, ``messages`` gives them meaning, ``session`` talks
to one device (handshake, clock mapping, commands, reconnects). The reference firmware lives
in ``firmware/``; the specification is ``docs/firmware-protocol.md``.
"""

from firmware_bridge.frame import Frame, FrameDecoder, Rejected, encode_frame
from firmware_bridge.messages import (
    PROTOCOL_VERSION,
    Ack,
    Channel,
    DeviceError,
    Hello,
    Readings,
)

__all__ = [
    "PROTOCOL_VERSION",
    "Ack",
    "Channel",
    "DeviceError",
    "Frame",
    "FrameDecoder",
    "Hello",
    "Readings",
    "Rejected",
    "encode_frame",
]
