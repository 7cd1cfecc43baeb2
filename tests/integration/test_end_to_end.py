"""Edge -> real Mosquitto -> hub -> API, with real processes."""

import time

from tests.integration.conftest import Edge, Hub, wait_until

ENVIRONMENT = '[[sensors]]\ndriver = "simulated"\nname = "air"\ninterval_s = 0.2\n'


def test_readings_flow_from_edge_to_api(hub: Hub, make_edge) -> None:  # type: ignore[no-untyped-def]
    edge: Edge = make_edge(interval_s=0.05, extra_sensors=ENVIRONMENT)
    edge.process.start()
    wait_until(lambda: hub.get("/api/v1/latest?site=lab&device=pi-1&metric=pm2_5")["readings"],
               what="a pm2_5 reading at /api/v1/latest")
    latest = hub.get("/api/v1/latest?site=lab&device=pi-1")["readings"]
    metrics = {r["metric"] for r in latest}
    assert {"temperature", "humidity", "pm2_5", "pm10", "co2", "noise", "sequence"} <= metrics
    pm = next(r for r in latest if r["metric"] == "pm2_5")
    assert pm["unit"] == "ug/m3" and pm["sensor"] == "air"
    devices = hub.get("/api/v1/devices?site=lab")["devices"]
    assert [(d["device"], d["state"]) for d in devices] == [("pi-1", "online")]
    sensors = {s["name"] for s in devices[0]["meta"]["sensors"]}
    assert sensors == {"seq", "air"}
    assert edge.process.terminate() == 0
    wait_until(lambda: hub.get("/api/v1/devices")["devices"][0]["state"] == "offline",
               what="device offline after a clean stop")


def test_last_will_marks_a_killed_edge_offline(hub: Hub, make_edge) -> None:  # type: ignore[no-untyped-def]
    edge: Edge = make_edge(interval_s=0.5)
    edge.process.start()
    wait_until(lambda: hub.get("/api/v1/devices")["devices"], what="device registered")
    assert hub.get("/api/v1/devices")["devices"][0]["state"] == "online"
    edge.process.kill()
    started = time.monotonic()
    # keepalive 5 s: the broker gives up after 1.5 keepalives and publishes the will.
    wait_until(lambda: hub.get("/api/v1/devices")["devices"][0]["state"] == "offline",
               timeout_s=15, what="last will marking the device offline")
    assert time.monotonic() - started < 12


def test_hub_stops_cleanly_on_sigterm(hub: Hub, make_edge) -> None:  # type: ignore[no-untyped-def]
    edge: Edge = make_edge(interval_s=0.01)
    edge.process.start()
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > 100, what="readings flowing")
    assert hub.process.terminate() == 0  # systemd's stop: SIGTERM
    output = hub.process.output()
    assert "hub stopped" in output
    assert "Traceback" not in output
