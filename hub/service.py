"""The running hub: storage, registry, broker link, ingest and the HTTP server, wired once.

One class for the three roles (docs/scaling.md): ``serve`` runs everything in one process,
``ingest`` only the MQTT ingest (no FastAPI imported), ``api`` only the HTTP API and page,
with its live stream fed straight from the broker (:mod:`hub.live_feed`). The rollups and
forwarders run in exactly one ingesting process (:mod:`hub.housekeeping`).
"""

import errno
import logging
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Literal

from fabcity.errors import ConfigError
from fabcity.mqtt import parse_broker_url
from hub.apikeys import ApiKeys
from hub.broker import EmbeddedBroker
from hub.broker_check import BrokerProbe
from hub.config import HubSettings
from hub.context import HubContext
from hub.deadletters import DeadLetters
from hub.filelock import FileLock
from hub.forward.base import Forwarder, forwarder_class
from hub.forward.cursor import ForwardCursors
from hub.housekeeping import Housekeeping, housekeeping_lock_path
from hub.ingest import Ingest
from hub.live import LiveBroadcaster
from hub.live_feed import LiveFeed
from hub.metrics import HubMetrics
from hub.provisioning import Provisioner
from hub.registry import DeviceRegistry
from hub.storage.base import retention_ms, storage_class
from hub.storage.rollup import RollupState, RollupWorker
from hub.workers import claim_client_id, worker_client_id

__all__ = ["EXIT_STORAGE_FAILED", "ROLES", "HubService", "Role", "check_port_free"]

Role = Literal["serve", "ingest", "api"]
ROLES: tuple[Role, ...] = ("serve", "ingest", "api")

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

    def __init__(self, settings: HubSettings, role: Role = "serve",
                 worker_id: str | None = None) -> None:
        self.settings = settings
        self.role = role
        self.ingests = role != "api"
        if role != "serve" and settings.mqtt.url is None:
            raise ConfigError(f"mqtt.url: fabcity hub {role} needs an external broker (the "
                              "embedded one runs inside fabcity hub serve only): set [mqtt] url")
        if role == "serve" and settings.api.workers > 1:
            raise ConfigError(f"api.workers: {settings.api.workers} API processes need the "
                              "roles apart: fabcity hub api (several workers) and fabcity hub "
                              "ingest; fabcity hub serve runs one process")
        #: ``[mqtt]`` with this ingest worker's own client id (hub.workers).
        self.mqtt = settings.mqtt.model_copy(
            update={"client_id": worker_client_id(settings.mqtt.client_id, worker_id)})
        self.broker: EmbeddedBroker | None = None
        self.metrics = HubMetrics()
        options = settings.storage.options()
        self.storage = storage_class(settings.storage.backend).from_options(options)
        self.registry = DeviceRegistry(settings.resolved_registry_path())
        state_path = settings.resolved_state_path()
        self.state_path = state_path
        self.dead_letters = DeadLetters(state_path)
        self.rollup_state = RollupState(state_path, self.storage.describe())
        self.storage.rollups = self.rollup_state
        self.rollups = RollupWorker(self.storage, self.rollup_state,
                                    raw_retention_ms=retention_ms(options.retention_raw))
        self.forward_cursors = ForwardCursors(state_path)
        self.forwarders: list[Forwarder] = [
            forwarder_class(entry.to)(entry.options(), self.storage, self.forward_cursors,
                                      self.metrics) for entry in settings.forward
        ] if self.ingests else []
        self.housekeeping = Housekeeping(housekeeping_lock_path(state_path), self.rollups,
                                         self.forwarders)
        self.ingest: Ingest | None = None
        self.live_feed: LiveFeed | None = None
        self.broker_probe: BrokerProbe | None = None
        self.live = LiveBroadcaster()
        self.exit_code = 0
        self._server: object | None = None  # the uvicorn server, told to stop on a fatal error
        self._stopped = threading.Event()  # fabcity hub ingest: set to stop
        self._client_lock: FileLock | None = None
        self.retiring = False  # fabcity hub ingest --retire: drain the session, then end it
        self._metrics_server: Any = None
        self.api_keys = ApiKeys(state_path)
        broker = settings.broker
        self.provisioner = (Provisioner(settings) if broker.password_file and broker.acl_file
                            and role != "ingest" else None)
        self.context = HubContext(
            self.storage, self.registry, self.metrics,
            mqtt_connected=self._mqtt_connected,
            storage_problem=lambda: self.ingest.storage_problem if self.ingest else None,
            dead_letters=self.dead_letters.count,
            rollup_problem=lambda: self.rollups.last_error,
            forwarders=lambda: [f.status() for f in self.forwarders],
            sites=settings.sites, open_data=settings.open_data, live=self.live,
            api_keys=self.api_keys, provisioner=self.provisioner,
            api=settings.api,
            broker_check=lambda: self.broker_probe.result if self.broker_probe else None,
        )

    def _mqtt_connected(self) -> bool:
        link = self.ingest if self.ingest is not None else self.live_feed
        return bool(link and link.connected)

    def start(self) -> None:
        """Start what this role runs: the embedded broker if no URL is set (``serve``), the
        ingest, the rollups and forwarders (one process of the hub), the live feed (``api``,
        or ``serve`` sharing the readings with other ingest workers)."""
        mqtt = self.mqtt
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
        # The ingest's own readings feed the live stream only while it receives them all.
        feed_live = self.role == "api" or (self.role == "serve" and bool(mqtt.shared_group))
        if self.ingests:
            self._client_lock = claim_client_id(self.state_path.parent, mqtt.client_id)
            self.ingest = Ingest(parse_broker_url(url), mqtt, self.settings.ingest,
                                 self.storage, self.registry, self.metrics, protocol=protocol,
                                 dead_letters=self.dead_letters, rollups=self.rollup_state,
                                 on_fatal=self._fatal,
                                 live=self.live if self.role == "serve" and not feed_live
                                 else None)
            self.ingest.start()
            if mqtt.probe if mqtt.probe is not None else self.broker is None:
                self._start_probe(url, protocol)
            if not self.retiring:
                self.housekeeping.start()
            log.info("ingest as MQTT client %s%s", mqtt.client_id,
                     f", readings shared in group {mqtt.shared_group}" if mqtt.shared_group
                     else "")
        if feed_live:
            self.live_feed = LiveFeed(parse_broker_url(url), mqtt, self.settings.ingest,
                                      self.live, protocol=protocol)
            self.live_feed.start()
        log.info("storage: %s", self.storage.describe())

    def _start_probe(self, url: str, protocol: Literal["v5", "v311"]) -> None:
        """Check, once ingest is connected, that the broker queues for the offline hub."""
        ingest = self.ingest
        assert ingest is not None
        self.broker_probe = BrokerProbe(
            parse_broker_url(url), self.mqtt, protocol == "v5",
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
        self._stopped.set()
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
        if self.live_feed is not None:
            self.live_feed.stop()
        if self.broker_probe is not None:
            self.broker_probe.stop()
        if self.ingest is not None:
            self.ingest.stop(end_session=self.retiring)
        self.housekeeping.stop()  # forwarders and rollups, if this process ran them
        if self._client_lock is not None:
            self._client_lock.release()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
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
        """Run until SIGINT/SIGTERM: ingest (``serve``) or the live feed (``api``) in the
        background, the API in the foreground.

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

    def run_ingest(self, on_started: Callable[[], None] | None = None,
                   retire: bool = False) -> None:
        """``fabcity hub ingest``: run until SIGINT/SIGTERM or a fatal storage error
        (``retire``: until this worker's session is drained and ended, :mod:`hub.retire`)."""
        group = self.settings.mqtt.shared_group
        if retire and (group is None or self.mqtt.client_id == self.settings.mqtt.client_id):
            raise ConfigError("--retire takes a worker out of its shared group: it needs "
                              "[mqtt] shared_group and the worker's --worker-id")
        self.retiring = retire
        previous = {sig: signal.signal(sig, lambda _signum, _frame: self._stopped.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            if retire:
                from hub.retire import drain_and_leave

                assert self.ingest is not None
                assert group is not None
                if not drain_and_leave(self.ingest, group):
                    self.retiring = False  # keep the session: nothing was drained
                    raise ConfigError(f"--retire: cannot reach the broker {self.mqtt.url}")
                return
            self._serve_metrics()
            if on_started is not None:
                on_started()
            self._stopped.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def request_stop(self) -> None:
        """Make :meth:`run_ingest` return (as SIGTERM does)."""
        self._stopped.set()

    def _serve_metrics(self) -> None:
        """``[ingest] metrics_port`` (plus a numeric worker id): this worker's /metrics."""
        port = self.settings.ingest.metrics_port
        if port is None:
            return
        from prometheus_client import start_http_server

        suffix = self.mqtt.client_id.removeprefix(self.settings.mqtt.client_id).lstrip("-")
        port += int(suffix) if suffix.isdigit() else 0
        host = self.settings.ingest.metrics_host
        try:
            self._metrics_server, _thread = start_http_server(
                port, host, registry=self.metrics.prometheus)
        except OSError as exc:
            raise ConfigError(f"ingest.metrics_port: cannot listen on {host}:{port}: "
                              f"{exc.strerror}") from None
        log.info("ingest metrics on http://%s:%d/metrics", host, port)
