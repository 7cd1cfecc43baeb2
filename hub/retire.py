"""Take an ingest worker out of its shared group for good: ``fabcity hub ingest --retire``.

A worker that merely stops keeps its persistent session, and with it its place in the
shared subscription: Mosquitto goes on queueing the worker's turn of the readings for it
(for the session expiry, a week), to be stored only when it returns. Retiring a worker
connects with its client id, stores what its session holds, unsubscribes from the group
(the broker then hands the readings to the remaining workers), stores what was still on
the way, and disconnects asking the broker to drop the session.
"""

import logging
import time

from fabcity.topic import Kind, subscription
from hub.ingest import Ingest

__all__ = ["QUIET_S", "drain_and_leave"]

log = logging.getLogger(__name__)

QUIET_S = 2.0  # no message for this long after the unsubscribe: the session is empty
CONNECT_TIMEOUT_S = 60.0


def _received(ingest: Ingest) -> float:
    value = ingest.metrics.prometheus.get_sample_value(
        "fabcity_messages_received_total", {"kind": Kind.READINGS.value})
    return value or 0.0


def drain_and_leave(ingest: Ingest, group: str) -> bool:
    """Unsubscribe ``ingest`` from the group once connected, wait until nothing more comes
    and everything received is stored; False if the broker was never reached."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not ingest.connected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    ingest.client.unsubscribe(f"$share/{group}/{subscription(Kind.READINGS)}")
    last, quiet_since = _received(ingest), time.monotonic()
    while time.monotonic() - quiet_since < QUIET_S or ingest.metrics.prometheus.get_sample_value(
            "fabcity_ingest_pending_messages"):
        time.sleep(0.1)
        now = _received(ingest)
        if now != last:
            last, quiet_since = now, time.monotonic()
    log.info("retired: %d messages stored from this worker's session; the broker drops it",
             int(last))
    return True
