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
    assert agent.publisher.meta.sensors[0].metrics == {"sequence": "1"}
    before = agent.publisher.retained
    assert any(b"sequence" in payload for payload in before.values())

    driver = agent.drivers[0]
    monkeypatch.setattr(driver, "metrics", lambda: {"sequence": "1", "temperature": "degC"})
    agent._driver_opened(driver)

    assert agent.publisher.meta.sensors[0].metrics == {"sequence": "1",
                                                        "temperature": "degC"}
    after = agent.publisher.retained
    added = [topic for topic in after if topic not in before]
    assert len(added) == 1 and "temperature" in added[0]
    assert b"temperature" in after[agent.publisher.meta_topic]  # the meta changed too
    agent.buffer.close()
