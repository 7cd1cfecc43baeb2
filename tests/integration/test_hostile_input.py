"""1,000 malformed or hostile messages are refused and counted; good readings keep flowing."""

import json
import re

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.reading import format_ts, now_ms
from tests.integration.conftest import Edge, Hub, assert_gap_free, wait_until
from tests.servers import Mosquitto


def _reading(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {"sensor": "air", "metric": "pm2_5", "value": 12.0,
                               "unit": "ug/m3", "ts": format_ts(now_ms())}
    item.update(overrides)
    return item


def _batch(*items: dict[str, object]) -> bytes:
    return json.dumps({"seq": 1, "readings": list(items)}).encode()


GOOD = "fabcity/v1/street/evil-pi/readings"
FAR_FUTURE = "2099-01-01T00:00:00.000Z"

# (reason counted by the hub, topic, payload, how many)
HOSTILE: list[tuple[str, str, bytes, int]] = [
    ("bad_json", GOOD, b'{"seq": 1, "readings": [', 150),
    ("bad_json", GOOD, b"\xff\xfe\x00garbage", 50),
    ("bad_schema", GOOD, b'{"seq": "one", "readings": []}', 50),
    ("bad_schema", GOOD, b"[1, 2, 3]", 50),
    ("bad_value", GOOD, b'{"seq":1,"readings":[{"sensor":"air","metric":"pm2_5","value":NaN,'
                        b'"unit":"ug/m3","ts":"2026-01-01T00:00:00Z"}]}', 100),
    ("bad_value", GOOD, _batch(_reading(value="12")), 50),
    # More bytes than MAX_PAYLOAD_BYTES never reach the hub (the broker's message_size_limit
    # drops them); more readings than allowed in fewer bytes do, and are refused there.
    ("oversized", GOOD, b'{"seq":1,"readings":[' + b",".join([b"{}"] * 5001) + b"]}", 50),
    ("bad_name", GOOD, _batch(_reading(sensor="air,site=x value=1")), 100),
    ("bad_name", GOOD, _batch(_reading(metric="PM 2.5")), 50),
    ("future_timestamp", GOOD, _batch(_reading(ts=FAR_FUTURE)), 100),
    ("unit_mismatch", GOOD, _batch(_reading(unit="ppm")), 50),
    ("unknown_kind", "fabcity/v1/street/evil-pi/bogus", b"{}", 100),
    ("bad_topic", "fabcity/v1/Street Lab/evil-pi/readings", _batch(_reading()), 50),
    ("bad_topic", "fabcity/v1/street/evil-pi/readings/extra", _batch(_reading()), 50),
]


EVIL = "fabcity/v1/street/evil-pi"
_BIG = "9" * 5000

# Status, meta and timestamps at the edges of the contract (counted on top of the 1,000).
HARDENING: list[tuple[str, str, bytes, int]] = [
    ("bad_json", f"{EVIL}/status", b'{"state":"online","x":"\\udfff"}', 50),
    ("bad_json", f"{EVIL}/meta", b'{"site":"street","device":"evil-pi","name":"\\ud800"}', 20),
    ("identity_mismatch", f"{EVIL}/meta", b'{"site":"street","device":"pi-1"}', 50),
    ("oversized", f"{EVIL}/meta",
     json.dumps({"site": "street", "device": "evil-pi", "name": "n" * 100_000}).encode(), 20),
    ("bad_schema", f"{EVIL}/meta", json.dumps({"site": "street", "device": "evil-pi", "sensors": [
        {"name": f"s{i}", "driver": "x", "metrics": {}} for i in range(65)]}).encode(), 20),
    ("bad_timestamp", GOOD, _batch(_reading(ts="2026-W48-5T00:00:01Z")), 10),
    ("bad_timestamp", GOOD, _batch(_reading(ts="2026-11-26T13:56:33,5Z")), 10),
    ("bad_timestamp", GOOD, _batch(_reading(ts="2026-11-26T13:56+00:00")), 10),
    ("bad_timestamp", GOOD, _batch(_reading(ts="2026-11-26T13:56:33+0000")), 10),
    ("bad_value", GOOD, _batch(_reading(value=0)).replace(b'"value": 0', b'"value": ' +
                                                          _BIG.encode()), 20),
]


def _rejected(metrics_text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^fabcity_rejected_total\{reason="([a-z_]+)"\} (\S+)$', metrics_text,
                        re.M)}


def test_hostile_payloads_are_counted_and_good_readings_keep_flowing(
    hub: Hub, mosquitto: Mosquitto, make_edge  # type: ignore[no-untyped-def]
) -> None:
    assert sum(n for *_, n in HOSTILE) == 1000
    edge: Edge = make_edge(interval_s=0.01)
    edge.process.start()
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > 50, what="good readings flowing")

    attacker = paho.Client(CallbackAPIVersion.VERSION2, client_id="attacker")
    attacker.max_inflight_messages_set(100)
    attacker.connect("127.0.0.1", mosquitto.port)
    attacker.loop_start()
    infos = [attacker.publish(topic, payload, qos=1)
             for _, topic, payload, count in HOSTILE + HARDENING for _ in range(count)]
    for info in infos:
        info.wait_for_publish(20)
    attacker.disconnect()
    attacker.loop_stop()

    expected: dict[str, int] = {}
    for reason, _, _, count in HOSTILE + HARDENING:
        expected[reason] = expected.get(reason, 0) + count
    wait_until(lambda: _rejected(hub.metrics()) == expected, timeout_s=30,
               what=f"rejections counted as {expected}")

    during = len(hub.sequence("lab", "pi-1"))
    wait_until(lambda: len(hub.sequence("lab", "pi-1")) > during + 50,
               what="good readings still flowing after the attack")
    assert edge.process.terminate() == 0
    wait_until(lambda: not edge.buffered(), what="edge buffer drained")
    assert_gap_free(hub.sequence("lab", "pi-1"))
    assert hub.rows("SELECT COUNT(*) FROM readings WHERE device = 'evil-pi'")[0][0] == 0
    output = hub.process.output()
    assert "Traceback" not in output
    assert "internal_error" not in output
    assert output.count("rejected (") <= len(expected)  # logged once per reason
