"""The embedded MQTT broker (amqtt) for demos and one-box set-ups.

It runs on its own thread and event loop, binds to loopback on a free port unless told
otherwise, and keeps everything in memory: for production, run Mosquitto with the
configuration in ``deploy/mosquitto/`` so queued messages survive a restart.

As Mosquitto's ``message_size_limit`` does there, it refuses any packet larger than the hub
takes (:data:`MAX_PACKET_BYTES`): amqtt has no such setting, so its fixed-header decoder is
wrapped to check the length before the rest of the packet is read, and the sender's
connection is closed. A 256 MB message then costs the broker 5 bytes, not 256 MB.
"""

import asyncio
import logging
import socket
import threading
from typing import Any

from fabcity.errors import ConfigError
from fabcity.logs import rate_limited
from hub.ingest import MAX_PACKET_BYTES

__all__ = ["MAX_PACKET_BYTES", "EmbeddedBroker", "PacketTooLarge", "free_port"]

log = logging.getLogger(__name__)
START_TIMEOUT_S = 10.0
_refusals = rate_limited(logging.getLogger(f"{__name__}.refused"))
_packet_limit = MAX_PACKET_BYTES
_CAPPED = "fabcity_capped"  # marks amqtt's decoder as already wrapped


class PacketTooLarge(Exception):
    """A client sent a packet above :data:`MAX_PACKET_BYTES`; its connection is closed."""


def cap_packet_size(limit: int = MAX_PACKET_BYTES) -> bool:
    """Make amqtt close the connection of a client whose next packet's length (read from its
    fixed header) exceeds ``limit``, before reading the packet. Returns whether the cap is in
    place (an amqtt without the expected decoder is warned about and left as it is)."""
    global _packet_limit
    from amqtt.mqtt.packet import MQTTFixedHeader

    _packet_limit = limit
    decode = getattr(MQTTFixedHeader.__dict__.get("from_stream"), "__func__", None)
    if decode is None:
        log.warning("embedded broker: cannot cap packet sizes on this amqtt version; "
                    "a client may send packets of any size")
        return False
    if getattr(decode, _CAPPED, False):
        return True

    async def capped(cls: Any, reader: Any) -> Any:
        header = await decode(cls, reader)
        if header is not None and header.remaining_length > _packet_limit:
            _refusals.warning("embedded broker: a client sent a packet of %d bytes, above the "
                              "limit of %d; its connection is closed", header.remaining_length,
                              _packet_limit)
            raise PacketTooLarge(f"packet of {header.remaining_length} bytes exceeds "
                                 f"{_packet_limit}")
        return header

    setattr(capped, _CAPPED, True)
    MQTTFixedHeader.from_stream = classmethod(capped)
    return True


class _NotTheRefusal(logging.Filter):
    """Drop amqtt's own line for a refused packet: ours says it once, rate-limited."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PacketTooLarge" not in record.getMessage()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """An amqtt broker on a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` for clients."""
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> str:
        """Start the broker and return its URL once it accepts connections."""
        self._thread = threading.Thread(target=self._serve, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise ConfigError(f"embedded MQTT broker did not start on {self.host}:{self.port}")
        if self._error is not None:
            raise ConfigError(
                f"embedded MQTT broker cannot listen on {self.host}:{self.port}: {self._error}"
            )
        log.info("embedded MQTT broker listening on %s", self.url)
        return self.url

    def _serve(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        handler_log = logging.getLogger("amqtt.mqtt.protocol.handler")
        if not any(isinstance(f, _NotTheRefusal) for f in handler_log.filters):
            handler_log.addFilter(_NotTheRefusal())
        cap_packet_size()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }
        try:
            self._broker = Broker(config, loop=loop)
            loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        """Shut the broker down; safe to call twice."""
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(5)
        except Exception as exc:
            log.debug("embedded broker shutdown: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
