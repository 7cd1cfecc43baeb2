"""Why a broker cannot be reached, said once per change rather than once per retry.

paho retries a lost connection by itself and tells nothing of why a TCP connect failed. Both
the edge agent and the hub use :class:`LinkReporter`: on a failure it probes the broker once
(DNS, TCP, TLS) to name the cause, logs it when the cause is new, and logs again when the link
is back, so an operator reading the journal sees one line per state change.
"""

import logging
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from fabcity.mqtt import BrokerAddress

__all__ = ["LinkReporter", "check_broker", "connack_hint", "probe_broker"]

PROBE_TIMEOUT_S = 2.0


def probe_broker(address: BrokerAddress, ca_file: Path | None = None,
                 timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """One attempt to reach the broker at the network level; what went wrong, in words."""
    try:
        socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve {address.host!r} (DNS: {exc.strerror}): check the host name"
    try:
        sock = socket.create_connection((address.host, address.port), timeout=timeout_s)
    except ConnectionRefusedError:
        return (f"connection refused: nothing listens on {address.host}:{address.port} "
                "(broker stopped, or another port)")
    except TimeoutError:
        return (f"no answer from {address.host}:{address.port} within {timeout_s:g} s "
                "(firewall, wrong host, or the network is down)")
    except OSError as exc:
        return f"cannot connect to {address.host}:{address.port}: {exc.strerror or exc}"
    with sock:
        if not address.tls:
            return "the TCP connection works but the MQTT handshake failed (a TLS-only port?)"
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        try:
            with context.wrap_socket(sock, server_hostname=address.host):
                pass
        except ssl.SSLCertVerificationError as exc:
            return (f"TLS: the broker's certificate is not trusted ({exc.verify_message}): "
                    "check [mqtt] ca_file")
        except (ssl.SSLError, OSError) as exc:
            return f"TLS handshake failed: {exc}"
    return "TCP and TLS work but the MQTT handshake failed"


def connack_hint(reason: object) -> str:
    """The broker's refusal (a CONNACK reason) with what to check."""
    text = str(reason)
    lowered = text.lower()
    if "password" in lowered or "user name" in lowered or "username" in lowered:
        return (f"the broker refused the credentials ({text}): check [mqtt] username and "
                "password (or password_file)")
    if "authori" in lowered:  # Mosquitto answers a wrong password this way too
        return (f"the broker refused this client ({text}): check [mqtt] username and "
                "password (or password_file), and that the broker's ACL knows this user")
    if "identifier" in lowered:
        return f"the broker refused the client id ({text}): check [mqtt] client_id"
    return f"the broker refused the connection: {text}"


class LinkReporter:
    """Logs a broker link's state changes: down (with the cause), cause changed, back up."""

    def __init__(self, logger: logging.Logger, address: BrokerAddress, who: str,
                 ca_file: Path | None = None, retry_max_s: float = 30.0,
                 context: Callable[[], str] = lambda: "") -> None:
        self.log = logger
        self.address = address
        self.who = who
        self.ca_file = ca_file
        self.retry_max_s = retry_max_s
        self.context = context  # e.g. "1,234 readings buffered"
        self.cause: str | None = None  # why the link is down, None while it is up
        self._down_since: float | None = None
        self.failures = 0

    def _extra(self) -> str:
        text = self.context()
        return f"; {text}" if text else ""

    def connect_failed(self) -> None:
        """A TCP/TLS connect failed (paho's ``on_connect_fail``): probe and report."""
        self.failed(probe_broker(self.address, self.ca_file))

    def failed(self, cause: str) -> None:
        """The link is down for ``cause``; logged only when the cause is new."""
        self.failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
        if cause != self.cause:
            self.cause = cause
            self.log.warning("%s cannot reach the broker %s: %s; retrying with backoff up to "
                             "%.0f s%s", self.who, self.address, cause, self.retry_max_s,
                             self._extra())

    def lost(self, reason: object) -> None:
        """An established link dropped."""
        self.failed(f"connection lost ({reason})")

    def connected(self) -> None:
        """The broker accepted us: say so, and for how long it was out."""
        if self._down_since is not None:
            down_s = time.monotonic() - self._down_since
            self.log.info("%s connected to %s after %.0f s and %d failed attempts%s",
                          self.who, self.address, down_s, self.failures, self._extra())
        else:
            self.log.info("%s connected to %s%s", self.who, self.address, self._extra())
        self.cause = None
        self._down_since = None
        self.failures = 0


def check_broker(address: BrokerAddress, username: str | None = None,
                 password: str | None = None, ca_file: Path | None = None,
                 timeout_s: float = 5.0) -> tuple[bool, str]:
    """Connect once, as a client would, and say whether the broker accepted us."""
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from fabcity.mqtt import apply_credentials

    answer: list[object] = []
    done = threading.Event()

    def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object = None) -> None:
        answer.append(reason)
        done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv311)
    apply_credentials(client, address, username, password, ca_file)
    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except (OSError, ValueError):
        return False, probe_broker(address, ca_file)
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            return False, f"no MQTT answer from {address} within {timeout_s:g} s"
        reason = answer[0]
        if getattr(reason, "is_failure", False):
            return False, connack_hint(reason)
        who = f" as {username!r}" if username else ""
        return True, f"the broker {address} accepted this client{who}"
    finally:
        client.disconnect()
        client.loop_stop()
