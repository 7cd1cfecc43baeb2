"""The hub ingest against a real Mosquitto: acks only after storage took the batch."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fabcity.codec import encode_batch
from fabcity.errors import ReadingsRefused, StorageUnavailable
from fabcity.mqtt import parse_broker_url
from fabcity.reading import Reading, now_ms
from hub.config import HubMqttConfig, IngestConfig
from hub.deadletters import DeadLetters
from hub.ingest import GC_GEN0_THRESHOLD, MAX_UNEXPECTED_FAILURES, Ingest, tune_gc
from hub.metrics import HubMetrics
from hub.registry import DeviceRegistry
from hub.storage.base import ReadingQuery
from hub.storage.sqlite import SqliteStorage
from tests.servers import Mosquitto


class FlakyStorage(SqliteStorage):
    """SQLite storage whose first ``failures`` writes fail as if the disk were gone."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures
        self.attempts = 0

    def write(self, readings: Sequence[Reading]) -> int:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StorageUnavailable("disk unplugged")
        return super().write(readings)


def _wait(predicate: Callable[[], object], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class PoisonedStorage(SqliteStorage):
    """SQLite that refuses, for good, readings whose value is 13 (as InfluxDB refuses a point
    beyond its retention policy), storing the rest of the batch."""

    def write(self, readings: Sequence[Reading]) -> int:
        stored = super().write([r for r in readings if r.value != 13])
        if any(r.value == 13 for r in readings):
            raise ReadingsRefused("partial write: points beyond retention policy dropped=1")
        return stored


class BuggyStorage(SqliteStorage):
    """A back-end with a bug: every write raises something unexpected."""

    attempts = 0

    def write(self, readings: Sequence[Reading]) -> int:
        self.attempts += 1
        raise KeyError("a bug")


def _ingest(broker: Mosquitto, storage: SqliteStorage, tmp_path: Path,
            metrics: HubMetrics | None = None, **kwargs: object) -> Ingest:
    ingest = Ingest(parse_broker_url(broker.url), HubMqttConfig(url=broker.url, client_id="hub"),
                    IngestConfig(), storage, DeviceRegistry(tmp_path / "registry.db"),
                    metrics or HubMetrics(), protocol="v5", **kwargs)  # type: ignore[arg-type]
    ingest.start()
    _wait(lambda: ingest.connected)
    time.sleep(0.2)  # subscription acknowledged
    return ingest


def _publish(broker: Mosquitto, count: int, device: str = "pi-1") -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{device}")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    base = now_ms() - 60_000
    infos = [client.publish(f"fabcity/v1/lab/{device}/readings",
                            encode_batch(i, [Reading("lab", device, "seq", "sequence", i,
                                                     base + i, "1")]), qos=1)
             for i in range(count)]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_storage_outage_is_retried_and_nothing_is_lost(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    storage = FlakyStorage(tmp_path / "hub.db", failures=3)
    metrics = HubMetrics()
    ingest = _ingest(mosquitto, storage, tmp_path, metrics)
    _publish(mosquitto, 200)
    _wait(lambda: storage.count() == 200)
    ingest.stop()
    assert storage.attempts > 3
    assert metrics.write_errors._value.get() == 3  # type: ignore[attr-defined]
    assert metrics.readings_stored._value.get() == 200  # type: ignore[attr-defined]


def test_messages_not_stored_are_not_acked_and_come_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    dead = FlakyStorage(tmp_path / "dead.db", failures=10**9)
    ingest = _ingest(mosquitto, dead, tmp_path)
    _publish(mosquitto, 100)
    _wait(lambda: dead.attempts >= 1)
    ingest.stop()  # storage never worked: nothing may have been acked
    assert dead.count() == 0

    storage = SqliteStorage(tmp_path / "hub.db")
    ingest = _ingest(mosquitto, storage, tmp_path)  # same client id: the session resumes
    _wait(lambda: storage.count() == 100)
    ingest.stop()
    stored = sorted(r.value for r in storage.query(ReadingQuery(0, now_ms())))
    assert stored == [float(i) for i in range(100)]


def test_an_outage_is_reported_once_with_its_start_and_cleared(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    storage = FlakyStorage(tmp_path / "hub.db", failures=10**9)
    metrics = HubMetrics()
    ingest = _ingest(mosquitto, storage, tmp_path, metrics)
    _publish(mosquitto, 10)
    _wait(lambda: ingest.storage_problem is not None)
    problem = ingest.storage_problem
    assert problem is not None and problem[0] == "disk unplugged"
    assert metrics.storage_available._value.get() == 0  # type: ignore[attr-defined]
    storage.failures = 0  # the disk is back
    _wait(lambda: storage.count() == 10)
    _wait(lambda: ingest.storage_problem is None)
    ingest.stop()
    assert metrics.storage_available._value.get() == 1  # type: ignore[attr-defined]


def test_readings_refused_for_good_become_dead_letters_and_the_rest_flows(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    storage = PoisonedStorage(tmp_path / "hub.db")
    letters = DeadLetters(tmp_path / "state.db")
    metrics = HubMetrics()
    ingest = _ingest(mosquitto, storage, tmp_path, metrics, dead_letters=letters)
    _publish(mosquitto, 100)
    _wait(lambda: storage.count() == 99 and letters.count() == 1)
    ingest.stop()
    (letter,) = letters.entries()
    assert letter.reading.value == 13 and "retention" in letter.reason
    assert metrics.dead_letters.labels("retention")._value.get() == 1  # type: ignore[attr-defined]
    # Everything was acked: a new session on the same client id gets nothing back.
    again = FlakyStorage(tmp_path / "again.db", failures=0)
    ingest = _ingest(mosquitto, again, tmp_path)
    time.sleep(1.0)
    ingest.stop()
    assert again.attempts == 0
    # Replayed into a store that takes it, the dead letter leaves.
    assert letters.replay(SqliteStorage(tmp_path / "fixed.db")) == (1, 0)
    assert letters.count() == 0


def test_an_unexpected_error_gives_up_without_acking_and_the_hub_can_exit(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "RETRY_MIN_S", 0.01)
    storage = BuggyStorage(tmp_path / "bug.db")
    fatal: list[BaseException] = []
    ingest = _ingest(mosquitto, storage, tmp_path, on_fatal=fatal.append)
    _publish(mosquitto, 20)
    _wait(lambda: fatal)
    assert storage.attempts == MAX_UNEXPECTED_FAILURES
    assert isinstance(ingest.failed, KeyError)
    ingest.stop()
    healthy = SqliteStorage(tmp_path / "hub.db")
    ingest = _ingest(mosquitto, healthy, tmp_path)  # the restarted hub gets every message
    _wait(lambda: healthy.count() == 20)
    ingest.stop()


def test_a_decoding_bug_is_counted_and_the_flow_goes_on(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.ingest as ingest_module

    real = ingest_module.decode_batch

    def buggy(topic, payload, **kwargs):  # type: ignore[no-untyped-def]
        if topic.device == "pi-bug":
            raise RuntimeError("a bug in the decoder")
        return real(topic, payload, **kwargs)

    monkeypatch.setattr(ingest_module, "decode_batch", buggy)
    storage = SqliteStorage(tmp_path / "hub.db")
    metrics = HubMetrics()
    ingest = _ingest(mosquitto, storage, tmp_path, metrics)
    _publish(mosquitto, 5, device="pi-bug")
    _publish(mosquitto, 50, device="pi-good")
    _wait(lambda: storage.count() == 50)
    ingest.stop()
    assert metrics.rejected.labels("internal_error")._value.get() == 5  # type: ignore[attr-defined]


def test_last_seen_reaches_other_processes_within_a_second_and_on_stop(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Last-seen times are written at most once a second, yet none is lost: a device's first
    batch at once, a later one by the timer with nothing else arriving, the last on stop."""
    storage = SqliteStorage(tmp_path / "hub.db")
    ingest = _ingest(mosquitto, storage, tmp_path)
    reader = DeviceRegistry(tmp_path / "registry.db")  # as an API process reads it

    def last_seen() -> int:
        devices = reader.devices()
        return devices[0].last_seen_ms or 0 if devices else 0

    before = now_ms()
    _publish(mosquitto, 5)
    _wait(lambda: last_seen() >= before, timeout_s=5)
    first = last_seen()
    time.sleep(0.3)
    _publish(mosquitto, 1)
    _wait(lambda: storage.count() == 6)
    _wait(lambda: last_seen() >= first + 300, timeout_s=3)  # no later batch, no stop
    second = last_seen()
    _publish(mosquitto, 1)
    _wait(lambda: storage.count() == 7)
    ingest.stop()
    assert last_seen() > second
    reader.close()


def test_status_and_meta_feed_the_registry(mosquitto: Mosquitto, tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    ingest = _ingest(mosquitto, storage, tmp_path)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    meta = {"site": "lab", "device": "pi-1", "kind": "machine",
            "sensors": [{"name": "laser", "driver": "current_clamp", "metrics": {"power": "W"}}]}
    for topic, body in (("status", {"state": "online"}), ("meta", meta)):
        client.publish(f"fabcity/v1/lab/pi-1/{topic}", json.dumps(body), qos=1,
                       retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    _wait(lambda: [d for d in ingest.registry.devices() if d.meta])
    ingest.stop()
    (device,) = ingest.registry.devices()
    assert (device.site, device.device, device.state) == ("lab", "pi-1", "online")
    assert device.meta is not None and device.meta.kind == "machine"


def test_a_meta_naming_another_device_and_a_surrogate_status_are_counted_bad_input(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    metrics = HubMetrics()
    ingest = _ingest(mosquitto, storage, tmp_path, metrics)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pi-evil")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    messages = [
        ("fabcity/v1/lab/pi-1/meta", json.dumps({"site": "lab", "device": "pi-2"}).encode()),
        ("fabcity/v1/lab/pi-1/status", b'{"state":"online","x":"\\udfff"}'),
        ("fabcity/v1/lab/pi-1/meta", b'{"site":"lab","device":"pi-1","name":"' +
         b"n" * 100_000 + b'"}'),
    ]
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()

    def count(reason: str) -> float:
        return metrics.rejected.labels(reason)._value.get()  # type: ignore[attr-defined,no-any-return]

    _wait(lambda: count("identity_mismatch") + count("bad_json") + count("oversized") == 3)
    ingest.stop()
    assert count("internal_error") == 0
    assert [(d.status, d.meta) for d in ingest.registry.devices()] == []


def test_a_replayed_message_stores_nothing_and_moves_the_duplicate_counter(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    storage = SqliteStorage(tmp_path / "hub.db")
    metrics = HubMetrics()
    ingest = _ingest(mosquitto, storage, tmp_path, metrics)
    _publish(mosquitto, 30)
    _wait(lambda: storage.count() == 30)
    first = storage.raw(ReadingQuery(0, now_ms()))
    # The same messages again, as an edge agent resends after a lost PUBACK. _publish makes
    # timestamps from the clock, so replay the stored readings exactly instead.
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pub-replay")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    for r in first:
        client.publish("fabcity/v1/lab/pi-1/readings", encode_batch(int(r.value), [r]),
                       qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    _wait(lambda: metrics.readings_duplicate._value.get() == 30)  # type: ignore[attr-defined]
    ingest.stop()
    assert storage.count() == 30
    assert metrics.readings_stored._value.get() == 30  # type: ignore[attr-defined]


def test_starting_ingest_makes_the_collector_run_less_often() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, *before[1:])
        tune_gc()
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
