"""The agent describes its device again once a driver learns its metrics (firmware)."""

from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.config import load_edge_settings


@pytest.fixture
def agent(tmp_path: Path) -> EdgeAgent:
    config = tmp_path / "edge.toml"
    config.write_text(
        'site = "lab"\ndevice = "pi-1"\n'
        f'[buffer]\npath = "{tmp_path / "buffer.db"}"\n'
        "[homeassistant]\ndiscovery = true\n"
        '[[sensors]]\ndriver = "simulated"\nname = "mcu"\nprofile = "sequence"\n'
    )
    return EdgeAgent(load_edge_settings(config))


def test_meta_and_discovery_follow_metrics_learnt_at_open(
    agent: EdgeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert agent.publisher.meta is not None
    assert agent.publisher.meta["sensors"][0]["metrics"] == {"sequence": "1"}
    before = list(agent._discovery)
    assert any(b"sequence" in payload for _, payload in before)

    driver = agent.drivers[0]
    monkeypatch.setattr(driver, "metrics", lambda: {"sequence": "1", "temperature": "degC"})
    agent._driver_opened(driver)

    assert agent.publisher.meta["sensors"][0]["metrics"] == {"sequence": "1",
                                                            "temperature": "degC"}
    added = [topic for topic, payload in agent._discovery if (topic, payload) not in before]
    assert len(added) == 1 and "temperature" in added[0]
    agent.buffer.close()
