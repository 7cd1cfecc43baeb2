"""docs/protocol.md stays true: its payloads decode as it says, its commands and code run."""

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.ack import decode_ack
from fabcity.codec import decode_batch
from fabcity.device import decode_meta, decode_status
from fabcity.reading import parse_ts
from fabcity.topic import Kind, Topic
from tests.servers import Mosquitto

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
TEXT = DOC.read_text()
EXAMPLE_NOW = parse_ts("2026-11-26T22:05:01Z")  # the instant the JSON examples are written at
BLOCK = re.compile(
    r"(?:<!-- rejects: (?P<rejects>[a-z_ ]+) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def blocks(lang: str) -> list[tuple[str, list[str]]]:
    found = [(m["body"], (m["rejects"] or "").split()) for m in BLOCK.finditer(TEXT)
             if m["lang"] == lang]
    assert found, f"no {lang} examples in {DOC}"
    return found


def check_payload(topic: Topic, payload: bytes, rejects: list[str], now: int | None) -> None:
    if topic.kind is Kind.READINGS:
        batch = decode_batch(topic, payload, now=now)
        assert [e.reason for e in batch.rejected] == rejects, payload
        assert batch.readings, payload
    elif topic.kind is Kind.STATUS:
        decode_status(payload)
    elif topic.kind is Kind.ACK:
        assert decode_ack(payload), payload
    else:
        meta = decode_meta(payload)
        assert (meta.site, meta.device) == (topic.site, topic.device)


def test_json_examples_decode_with_the_documented_outcome() -> None:
    kinds = set()
    for body, rejects in blocks("json"):
        data = json.loads(body)
        kind = Kind.READINGS if "readings" in data else Kind.STATUS if "state" in data \
            else Kind.ACK if "stored" in data else Kind.META
        kinds.add(kind)
        check_payload(Topic("fablab-bcn", "pi-laser", kind), body.encode(), rejects,
                      EXAMPLE_NOW)
    assert kinds == {Kind.READINGS, Kind.STATUS, Kind.META, Kind.ACK}


def shell_messages(script: str) -> list[tuple[str, bytes]]:
    """Run the doc's shell examples with mosquitto_pub replaced by a printer of -t and -m."""
    stub = ('mosquitto_pub() { t=; m=; while [ $# -gt 0 ]; do case "$1" in -t) t=$2; shift;; '
            '-m) m=$2; shift;; esac; shift; done; printf "%s\\t%s\\n" "$t" "$m"; }; '
            "mosquitto_sub() { :; }\n")
    out = subprocess.run(["bash", "-euc", stub + script], capture_output=True, check=True)
    lines = out.stdout.decode().splitlines()
    return [(line.split("\t")[0], line.split("\t", 1)[1].encode()) for line in lines]


def test_shell_examples_publish_valid_payloads_now() -> None:
    messages = [msg for body, _ in blocks("sh") for msg in shell_messages(body)]
    assert len(messages) == 4
    for topic, payload in messages:
        check_payload(Topic.parse(topic), payload, [], None)


def test_python_examples_compile() -> None:
    for body, _ in blocks("python"):
        compile(body, str(DOC), "exec")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed")
    server = Mosquitto(tmp_path / "mosquitto").start()
    yield server
    server.stop()


def listen(port: int) -> tuple[paho.Client, list[tuple[str, bytes]]]:
    received: list[tuple[str, bytes]] = []
    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, *_: c.subscribe("fabcity/v1/#", qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, msg: received.append((msg.topic, msg.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert ready.wait(10)
    return client, received


@pytest.mark.integration
def test_shell_and_paho_examples_work_against_mosquitto(broker: Mosquitto) -> None:
    if shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto-clients is not installed")
    listener, received = listen(broker.port)
    try:
        for body, _ in blocks("sh"):
            if "mosquitto_pub" in body:
                subprocess.run(["bash", "-euc", body.replace("1883", str(broker.port))],
                               check=True, timeout=20)
        (paho_example,) = [b for b, _ in blocks("python") if "paho" in b]
        subprocess.run([sys.executable, "-c", paho_example.replace("1883", str(broker.port))],
                       check=True, timeout=30)
        expected = 4 + 2 + 3  # shell: 1 + 3 messages; paho: online, offline, 3 batches
        deadline = time.monotonic() + 5
        while len(received) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.disconnect()
        listener.loop_stop()
    kinds = [Topic.parse(topic).kind for topic, _ in received]
    assert kinds.count(Kind.READINGS) == 5 and len(received) == expected
    for topic, payload in received:
        check_payload(Topic.parse(topic), payload, [], None)
