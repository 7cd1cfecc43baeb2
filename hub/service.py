"""The running hub: storage, registry, broker link, ingest and the HTTP server, wired once."""

import errno
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Literal

from fabcity.errors import ConfigError
from fabcity.mqtt import parse_broker_url
from hub.apikeys import ApiKeys
from hub.broker import EmbeddedBroker
from hub.broker_check import BrokerProbe
from hub.config import HubSettings
from hub.context import HubContext
from hub.deadletters import DeadLetters
from hub.forward.base import Forwarder, forwarder_class
from hub.forward.cursor import ForwardCursors
from hub.ingest import Ingest
from hub.live import LiveBroadcaster
from hub.metrics import HubMetrics
from hub.provisioning import Provisioner
from hub.registry import DeviceRegistry
from hub.storage.base import retention_ms, storage_class
from hub.storage.rollup import RollupState, RollupWorker

__all__ = ["EXIT_STORAGE_FAILED", "HubService", "check_port_free"]

EXIT_STORAGE_FAILED = 3  # ingest gave up on an unexpected storage error
SHUTDOWN_GRACE_S = 5  # then requests still running (a stalled live client) are cancelled

log = logging.getLogger(__name__)


MQTT_PORT = 1883


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_port_free(host: str, port: int) -> None:
    """Fail early, and say what to do, when the API port is taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (another fabcity or web server?). "
                    f"Pick another one: --port 8080, or [api] port in hub.toml, or "
                    f"FABCITY_API__PORT=8080"
                ) from None
            raise ConfigError(f"api: cannot listen on {host}:{port}: {exc.strerror}") from None


class _Stopped(Exception):
    """Raised by the signal handler once uvicorn has shut down."""


def _stop_serving(_signum: int, _frame: FrameType | None) -> None:
    raise _Stopped


class HubService:
    """Build with settings, then :meth:`start` / :meth:`stop`, or :meth:`serve` to block."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.metrics = HubMetrics()
        options = settings.storage.options()
        self.storage = storage_class(settings.storage.backend).from_options(options)
        self.registry = DeviceRegistry(settings.resolved_registry_path())
        state_path = settings.resolved_state_path()
        self.dead_letters = DeadLetters(state_path)
        self.rollup_state = RollupState(state_path, self.storage.describe())
        self.storage.rollups = self.rollup_state
        self.rollups = RollupWorker(self.storage, self.rollup_state,
                                    raw_retention_ms=retention_ms(options.retention_raw))
        self.forward_cursors = ForwardCursors(state_path)
        self.forwarders: list[Forwarder] = [
            forwarder_class(entry.to)(entry.options(), self.storage, self.forward_cursors,
                                      self.metrics) for entry in settings.forward]
        self.ingest: Ingest | None = None
        self.broker_probe: BrokerProbe | None = None
        self.live = LiveBroadcaster()
        self.exit_code = 0
        self._server: object | None = None  # the uvicorn server, told to stop on a fatal error
        self.api_keys = ApiKeys(state_path)
        broker = settings.broker
        self.provisioner = (Provisioner(settings) if broker.password_file and broker.acl_file
                            else None)
        self.context = HubContext(
            self.storage, self.registry, self.metrics,
            mqtt_connected=lambda: bool(self.ingest and self.ingest.connected),
            storage_problem=lambda: self.ingest.storage_problem if self.ingest else None,
            dead_letters=self.dead_letters.count,
            rollup_problem=lambda: self.rollups.last_error,
            forwarders=lambda: [f.status() for f in self.forwarders],
            sites=settings.sites, open_data=settings.open_data, live=self.live,
            api_keys=self.api_keys, provisioner=self.provisioner,
            api=settings.api,
            broker_check=lambda: self.broker_probe.result if self.broker_probe else None,
        )

    def start(self) -> None:
        """Start the embedded broker if no URL is set, then the ingest."""
        mqtt = self.settings.mqtt
        url = mqtt.url
        protocol: Literal["v5", "v311"] = "v311" if mqtt.protocol == "v311" else "v5"
        if url is None:
            self.broker = EmbeddedBroker(port=self._embedded_port())
            url = self.broker.start()
            protocol = "v311"  # amqtt speaks MQTT 3.1.1 only
            log.info("embedded MQTT broker (in memory, for one box) at %s: edge agents on this "
                     "machine publish there ([mqtt] url = \"%s\" in their edge.toml)", url, url)
        elif mqtt.protocol == "auto":
            protocol = "v5"
        self.ingest = Ingest(parse_broker_url(url), mqtt, self.settings.ingest, self.storage,
                             self.registry, self.metrics, protocol=protocol,
                             dead_letters=self.dead_letters, rollups=self.rollup_state,
                             on_fatal=self._fatal, live=self.live)
        self.ingest.start()
        if mqtt.probe if mqtt.probe is not None else self.broker is None:
            self._start_probe(url, protocol)
        self.rollups.start()
        for forwarder in self.forwarders:
            forwarder.start()
        log.info("storage: %s", self.storage.describe())

    def _start_probe(self, url: str, protocol: Literal["v5", "v311"]) -> None:
        """Check, once ingest is connected, that the broker queues for the offline hub."""
        ingest = self.ingest
        assert ingest is not None
        self.broker_probe = BrokerProbe(
            parse_broker_url(url), self.settings.mqtt, protocol == "v5",
            link=lambda: (ingest.connected, ingest.connects, ingest.session_present))
        self.broker_probe.start()

    def _embedded_port(self) -> int:
        """``[mqtt] embedded_port``, else 1883 when free (what edge agents expect), else any
        free port, saying so: a broker already running here keeps 1883."""
        port = self.settings.mqtt.embedded_port
        if port is not None:
            return port
        if port_free("127.0.0.1", MQTT_PORT):
            return MQTT_PORT
        log.warning("port %d is taken (another MQTT broker runs here?): the embedded broker "
                    "takes a free port instead; edge agents must use the URL below, or set "
                    "[mqtt] url to use the broker on %d", MQTT_PORT, MQTT_PORT)
        return 0

    def _fatal(self, _exc: BaseException) -> None:
        """Ingest gave up: stop serving and exit non-zero (systemd restarts the hub)."""
        self.exit_code = EXIT_STORAGE_FAILED
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]

    @property
    def broker_url(self) -> str:
        """The URL edge agents should publish to."""
        if self.broker is not None:
            return self.broker.url
        return self.settings.mqtt.url or ""

    def stop(self) -> None:
        """Stop forwarders, ingest (flushing and acking what it holds), broker, storage."""
        for forwarder in self.forwarders:
            forwarder.stop()
        if self.broker_probe is not None:
            self.broker_probe.stop()
        if self.ingest is not None:
            self.ingest.stop()
        self.rollups.stop()
        if self.broker is not None:
            self.broker.stop()
        self.storage.close()
        self.registry.close()
        self.dead_letters.close()
        self.rollup_state.close()
        self.forward_cursors.close()
        self.api_keys.close()
        if self.provisioner is not None:
            self.provisioner.close()
        log.info("hub stopped")

    def serve(
        self,
        on_started: Callable[[], None] | None = None,
        on_stopping: Callable[[], None] | None = None,
    ) -> None:
        """Run until SIGINT/SIGTERM: ingest in the background, the API in the foreground.

        ``on_started`` runs once ingest is up and before the API starts; ``on_stopping``
        runs first on the way out.
        """
        import uvicorn

        from hub.api.app import create_app
        from hub.api.server import uvicorn_config

        api = self.settings.api
        check_port_free(api.host, api.port)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again with
        # the handlers it found: make those end this method normally, so the clean-up below
        # runs (with Python's default SIGTERM the process would die on the spot).
        previous = {sig: signal.signal(sig, _stop_serving)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            if on_started is not None:
                on_started()
            config = uvicorn_config(create_app(self.context), api,
                                    timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
            log.info("hub API on http://%s:%d (docs at /docs)", api.host, api.port)
            server = uvicorn.Server(config)
            stop_server = server.shutdown

            async def shutdown(sockets: list[socket.socket] | None = None) -> None:
                self.live.close()  # live streams end at once instead of holding the exit
                await stop_server(sockets)

            server.shutdown = shutdown  # type: ignore[method-assign]
            self._server = server
            if self.exit_code == 0:
                server.run()
        except _Stopped:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if on_stopping is not None:
                on_stopping()
            self.stop()
