"""Crashes and restarts of hub, edge and broker lose nothing and store nothing twice.

The edge runs a ``sequence`` sensor (0, 1, 2, … every 5 ms); after each scenario the hub's
database must hold every value exactly once.
"""

import time

from tests.integration.conftest import Edge, Hub, assert_gap_free, wait_until
from tests.servers import Mosquitto


def _drain(edge: Edge, hub: Hub) -> None:
    """Stop the edge cleanly and wait until the hub holds everything it produced."""
    assert edge.process.terminate() == 0, edge.process.output()[-2000:]
    assert edge.buffered() == [], "a clean stop leaves only unacknowledged readings behind"
    values = hub.sequence(edge.site, edge.device)
    wait_until(lambda: len(hub.sequence(edge.site, edge.device)) >= max(values, default=0) + 1,
               what="the hub to store the last readings")


def test_hub_killed_mid_stream_loses_nothing(hub: Hub, make_edge) -> None:  # type: ignore[no-untyped-def]
    edge: Edge = make_edge()
    edge.process.start()
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > 200, what="readings flowing")
    hub.process.kill()  # SIGKILL: no flush, no acks for what it held
    stored_before = len(hub.sequence("lab", "pi-1"))
    time.sleep(1.5)  # the edge keeps publishing; the broker queues for the hub's session
    hub.start()
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > stored_before + 300,
               what="the restarted hub to catch up")
    _drain(edge, hub)
    values = hub.sequence("lab", "pi-1")
    assert_gap_free(values)
    assert len(values) > 500


def test_edge_killed_and_restarted_sends_what_it_buffered(
    hub: Hub, mosquitto: Mosquitto, make_edge  # type: ignore[no-untyped-def]
) -> None:
    edge: Edge = make_edge()
    edge.process.start()
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > 100, what="readings flowing")
    mosquitto.stop()  # the edge can no longer publish: readings pile up in its buffer
    time.sleep(1.0)
    edge.process.kill()
    buffered = edge.buffered()
    assert len(buffered) > 50, "the edge should have buffered readings during the outage"
    killed_at_ms = max(ts for ts, _ in buffered)
    last_value = int(max(v for _, v in buffered))
    mosquitto.start()
    edge.process.start()  # same buffer file; the sequence restarts at 0 with new timestamps
    wait_until(lambda: hub.rows("SELECT COUNT(*) FROM readings WHERE ts_ms > ?",
                                (killed_at_ms,))[0][0] > 50, what="the restarted edge publishing")
    _drain(edge, hub)
    before_kill = [v for (v,) in hub.rows(
        "SELECT value FROM readings WHERE sensor = 'seq' AND ts_ms <= ? ORDER BY ts_ms",
        (killed_at_ms,))]
    assert_gap_free(before_kill)
    assert int(max(before_kill)) == last_value
    assert {(ts, v) for ts, v in buffered} <= set(hub.rows(
        "SELECT ts_ms, value FROM readings WHERE sensor = 'seq'"))


def test_broker_restart_while_edge_publishes_loses_nothing(
    hub: Hub, mosquitto: Mosquitto, make_edge  # type: ignore[no-untyped-def]
) -> None:
    edge: Edge = make_edge()
    edge.process.start()
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > 200, what="readings flowing")
    mosquitto.restart()
    time.sleep(0.5)
    mosquitto.restart()  # twice, the second time while both clients reconnect
    wait_until(lambda: "connected" in hub.get("/api/v1/health")["mqtt"] and
               hub.get("/api/v1/health")["mqtt"]["connected"], what="hub reconnected")
    count = len(hub.sequence("lab", "pi-1"))
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > count + 200,
               what="readings flowing again after the broker restarts")
    _drain(edge, hub)
    assert_gap_free(hub.sequence("lab", "pi-1"))


def test_readings_leave_the_buffer_only_on_puback(
    mosquitto: Mosquitto, make_edge  # type: ignore[no-untyped-def]
) -> None:
    """A frozen broker acks nothing: every reading the agent made since stays buffered.

    No hub here, so the agent deletes on the PUBACK (``confirm = false``): with confirmation
    its buffer would never drain in the first place."""
    import signal

    edge: Edge = make_edge(publish="confirm = false\n")
    edge.process.start()
    wait_until(lambda: edge.buffer.exists() and len(edge.buffered()) < 20 and
               edge.process.output().count("connected to") > 0,
               what="the agent publishing and its buffer draining")
    assert mosquitto.proc is not None
    mosquitto.proc.send_signal(signal.SIGSTOP)  # TCP still accepts; no PUBACK comes back
    try:
        time.sleep(1.5)
        edge.process.kill()
    finally:
        mosquitto.proc.send_signal(signal.SIGCONT)
    values = [int(v) for _, v in edge.buffered()]
    assert len(values) > 100, "readings made while the broker was frozen must stay buffered"
    assert values == list(range(values[0], values[0] + len(values))), "a gap in the buffer"
