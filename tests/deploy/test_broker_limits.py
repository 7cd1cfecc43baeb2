"""The deployment's broker refuses what the hub would refuse: its message size limit is the
hub's payload limit, and status and meta fit under it."""

from pathlib import Path

from fabcity.codec import MAX_PAYLOAD_BYTES
from fabcity.device import MAX_META_BYTES, MAX_STATUS_BYTES
from hub.ingest import MAX_PACKET_BYTES

CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"


def _settings() -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in CONF.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")}


def test_broker_message_size_limit_is_the_hubs_payload_limit() -> None:
    (limit,) = _settings()["message_size_limit"]
    assert int(limit) == MAX_PAYLOAD_BYTES


def test_status_and_meta_fit_under_the_broker_limit() -> None:
    limit = int(_settings()["message_size_limit"][0])
    assert limit >= MAX_STATUS_BYTES and limit >= MAX_META_BYTES


def test_the_packet_size_the_hub_announces_holds_a_payload_at_the_limit_and_its_topic() -> None:
    longest_topic = len("fabcity/v1/") + 2 * 64 + len("//readings")
    assert MAX_PAYLOAD_BYTES + 5 + 2 + longest_topic + 2 + 100 <= MAX_PACKET_BYTES
