"""Home Assistant discovery configs, and the agent publishing them to a real Mosquitto."""

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import EdgeAgent
from edge.config import EdgeSettings
from edge.homeassistant import discovery_messages, entity_config
from tests.servers import Mosquitto


def settings(**extra: object) -> EdgeSettings:
    return EdgeSettings(site="fablab", device="pi1", name="Laser room", **extra)


def test_numeric_metric_config() -> None:
    topic, config = entity_config(settings(), "dust", "pm2_5", "ug/m3")
    assert topic == "homeassistant/sensor/fabcity_fablab_pi1/dust_pm2_5/config"
    assert config["state_topic"] == "fabcity/v1/fablab/pi1/readings"
    assert config["availability_topic"] == "fabcity/v1/fablab/pi1/status"
    assert config["unit_of_measurement"] == "µg/m³"
    assert config["device_class"] == "pm25" and config["state_class"] == "measurement"
    assert config["unique_id"] == "fabcity_fablab_pi1_dust_pm2_5"
    assert "selectattr('sensor', 'eq', 'dust')" in config["value_template"]
    assert "selectattr('metric', 'eq', 'pm2_5')" in config["value_template"]
    assert "this.state" in config["value_template"]  # batches without this metric keep the state
    assert config["device"]["name"] == "Laser room"


def test_energy_is_a_total_increasing_counter_and_state_a_binary_sensor() -> None:
    _, energy = entity_config(settings(), "laser", "energy", "Wh")
    assert (energy["device_class"], energy["state_class"]) == ("energy", "total_increasing")
    topic, state = entity_config(settings(), "laser", "state", "bool")
    assert topic.startswith("homeassistant/binary_sensor/")
    assert state["device_class"] == "running"
    assert (state["payload_on"], state["payload_off"]) == ("on", "off")
    assert "unit_of_measurement" not in state


def test_unknown_metric_keeps_its_unit_and_prefix_is_configurable() -> None:
    custom = settings(homeassistant={"discovery": True, "prefix": "ha"})
    topic, config = entity_config(custom, "pm", "particles_0_3um", "count/dL")
    assert topic.startswith("ha/sensor/")
    assert config["unit_of_measurement"] == "count/dL" and "device_class" not in config


def test_one_message_per_metric() -> None:
    messages = discovery_messages(settings(), {"a": {"co2": "ppm"},
                                               "b": {"door_open": "bool", "temperature": "degC"}})
    assert len(messages) == 3
    assert json.loads(messages[2][1])["unit_of_measurement"] == "°C"


@pytest.mark.integration
def test_agent_publishes_retained_discovery_and_calibrated_readings(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    agent = None
    try:
        config = settings(
            mqtt={"url": broker.url},
            buffer={"path": str(tmp_path / "buffer.db")},
            publish={"linger_s": 0},
            homeassistant={"discovery": True},
            sensors=[{"driver": "simulated", "name": "laser", "profile": "machine",
                      "interval_s": 0.1, "calibration": {"power": {"scale": 0}}}],
        )
        agent = EdgeAgent(config)
        agent.start()
        got: dict[str, bytes] = {}
        lock = threading.Lock()

        def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
            with lock:
                got.setdefault(msg.topic, msg.payload)

        sub = paho.Client(CallbackAPIVersion.VERSION2)
        sub.on_message = on_message
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe([("homeassistant/#", 1), ("fabcity/v1/+/+/readings", 1)])
        sub.loop_start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if len(got) >= 4:
                    break
            time.sleep(0.05)
        sub.loop_stop()
        sub.disconnect()
    finally:
        if agent is not None:
            agent.stop()
        broker.stop()
    node = "homeassistant/{}/fabcity_fablab_pi1/laser_{}/config"
    assert set(got) >= {node.format("sensor", "power"), node.format("sensor", "energy"),
                        node.format("binary_sensor", "state"), "fabcity/v1/fablab/pi1/readings"}
    batch = json.loads(got["fabcity/v1/fablab/pi1/readings"])
    powers = [r["value"] for r in batch["readings"] if r["metric"] == "power"]
    assert powers and all(p == 0 for p in powers)  # the calibration ran in the agent
