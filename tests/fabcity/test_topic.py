"""Topics of wire contract v1: ``fabcity/v1/{site}/{device}/{kind}``."""

import pytest

from fabcity.errors import BadReading
from fabcity.topic import Kind, Topic, subscription


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_round_trips_through_str_and_parse(kind: Kind) -> None:
    topic = Topic("fablab-bcn", "pi-laser", kind)
    text = str(topic)
    assert text == f"fabcity/v1/fablab-bcn/pi-laser/{kind.value}"
    assert Topic.parse(text) == topic


def test_kind_given_as_string_becomes_a_kind() -> None:
    topic = Topic("s", "d", "status")  # type: ignore[arg-type]
    assert topic.kind is Kind.STATUS


@pytest.mark.parametrize("text", [
    "fabcity/v1/s/d",
    "fabcity/v1/s/d/readings/extra",
    "fabcity/v2/s/d/readings",
    "other/v1/s/d/readings",
    "/fabcity/v1/s/d/readings",
    "fabcity/v1/S/d/readings",
    "fabcity/v1/s/D/readings",
    "fabcity/v1//d/readings",
    "fabcity/v1/s/+/readings",
    "fabcity/v1/s/#/readings",
    "fabcity/v1/a b/d/readings",
    "",
])
def test_malformed_topics_are_bad_topic(text: str) -> None:
    with pytest.raises(BadReading) as err:
        Topic.parse(text)
    assert err.value.reason == "bad_topic"


@pytest.mark.parametrize("kind", ["telemetry", "Readings", "", "reading"])
def test_unknown_kinds_are_named_as_such(kind: str) -> None:
    with pytest.raises(BadReading, match="one of readings, status, meta, cmd, ack") as err:
        Topic.parse(f"fabcity/v1/s/d/{kind}")
    assert err.value.reason == "unknown_kind"


def test_constructor_refuses_bad_names() -> None:
    with pytest.raises(BadReading) as err:
        Topic("Site", "d", Kind.READINGS)
    assert err.value.reason == "bad_name"
    with pytest.raises(BadReading) as err:
        Topic("s", "d", "bogus")  # type: ignore[arg-type]
    assert err.value.reason == "unknown_kind"


def test_subscription_filters() -> None:
    assert subscription() == "fabcity/v1/+/+/+"
    assert subscription(Kind.READINGS) == "fabcity/v1/+/+/readings"
    assert subscription("status", site="lab") == "fabcity/v1/lab/+/status"
