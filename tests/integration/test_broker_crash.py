"""A Mosquitto SIGKILLed mid-stream loses nothing once the hub confirms what it stored.

A PUBACK only means the broker holds a message in memory until its next snapshot; edge
agents with ``[publish] confirm`` keep every reading until the hub's ``ack`` says it is
stored, and send again what stays unconfirmed. Two agents publish a sequence (0, 1, 2, …
every 5 ms) while the broker is killed twice with the hub connected and once more with the
hub down; the hub's database must then hold every value of both exactly once.
"""

import signal
import time
from collections.abc import Callable

from tests.integration.conftest import Edge, Hub, assert_gap_free, wait_until
from tests.servers import Mosquitto

DEVICES = ("pi-1", "pi-2")


def _stored(hub: Hub) -> int:
    return int(hub.rows("SELECT COUNT(*) FROM readings WHERE sensor = 'seq'")[0][0])


def _crash(mosquitto: Mosquitto) -> None:
    """SIGKILL (no final snapshot), then the same broker again: same port, same data dir."""
    mosquitto.stop(signal.SIGKILL)
    mosquitto.start()


def _flowing(hub: Hub, more: int) -> None:
    before = _stored(hub)
    wait_until(lambda: _stored(hub) > before + more, 30, what=f"{more} more readings stored")


def test_broker_killed_twice_and_with_the_hub_down_loses_nothing(
    hub: Hub, mosquitto: Mosquitto, make_edge: Callable[..., Edge],
) -> None:
    edges = [make_edge(device=name, publish="confirm = true\nconfirm_timeout_s = 2\n")
             for name in DEVICES]
    for edge in edges:
        edge.process.start()
    _flowing(hub, 300)
    for _ in range(2):
        _crash(mosquitto)
        _flowing(hub, 300)
    hub.process.kill()
    time.sleep(1.5)  # the agents keep publishing; the broker queues for the hub's session
    _crash(mosquitto)  # and forgets what it queued since its last snapshot
    time.sleep(1.0)
    hub.start()
    _flowing(hub, 300)
    for edge in edges:
        assert edge.process.terminate() == 0, edge.process.output()[-2000:]
        assert edge.buffered() == [], "a clean stop with the hub up leaves nothing unconfirmed"
    for edge in edges:
        values = hub.sequence("lab", edge.device)
        assert_gap_free(values)
        assert len(values) > 500
    identities = hub.rows("SELECT COUNT(*), COUNT(DISTINCT device || ts_ms) FROM readings "
                          "WHERE sensor = 'seq'")[0]
    assert identities[0] == identities[1]


def test_without_confirm_an_agent_deletes_on_the_puback_and_with_it_keeps_readings(
    mosquitto: Mosquitto, make_edge: Callable[..., Edge],
) -> None:
    """No hub at all: the broker PUBACKs everything, nobody confirms anything."""
    plain = make_edge(device="pi-plain", publish="confirm = false\n")
    confirming = make_edge(device="pi-confirm")  # the default
    for edge in (plain, confirming):
        edge.process.start()
    wait_until(lambda: confirming.buffer.exists() and len(confirming.buffered()) > 300, 30,
               what="the confirming agent buffering readings")
    for edge in (plain, confirming):
        assert edge.process.terminate() == 0, edge.process.output()[-2000:]
    assert plain.buffered() == [], "without confirm the PUBACK lets the readings go"
    kept = [int(v) for _, v in confirming.buffered()]
    assert kept == list(range(len(kept))), "with confirm every reading made is still there"
