"""The cluster deployment files (deploy/compose.cluster.yaml and what it mounts) agree with
each other and with the code. No Docker here: parsed with a YAML parser and checked."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fabcity.codec import MAX_PAYLOAD_BYTES
from fabcity.config import env_overrides, load_settings
from hub.config import HubSettings, check_storage_options

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# made by the operator: certificates and the broker's account files (docs/operations.md)
USER_CREATED = {"certs", "fabcity.passwd"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.cluster.yaml").read_text())  # type: ignore[no-any-return]


def _flag_values(command: list[str], flag: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in command if arg.startswith(f"-{flag}=")]


def test_every_mount_exists_and_every_volume_is_declared(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                path = DEPLOY / source
                assert path.exists() or path.name in USER_CREATED, f"{name}: {source} missing"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_each_broker_node_is_one_of_three_behind_the_balancer(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for profile, prefix in (("emqx", "emqx"), ("vernemq", "vmq")):
        nodes = sorted(n for n, s in services.items() if profile in s.get("profiles", []))
        assert nodes == [f"{prefix}{i}" for i in (1, 2, 3)]
        aliases = [services[n]["networks"]["fabcity"]["aliases"][0] for n in nodes]
        assert aliases == ["broker1", "broker2", "broker3"]
    balancer = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    for port in ("8883", "1883"):  # devices over TLS, the hub processes inside
        assert re.findall(rf"server broker\d (broker\d):{port}", balancer) == [
            "broker1", "broker2", "broker3"]
        assert f"bind :{port}" in balancer
    hub = load_settings(HubSettings, DEPLOY / "hub.cluster.toml")
    assert hub.mqtt.url == "mqtt://haproxy:1883"


def test_emqx_seeds_name_every_emqx_node(compose: dict[str, Any]) -> None:
    services = compose["services"]
    names = sorted(services[f"emqx{i}"]["environment"]["EMQX_NODE__NAME"] for i in (1, 2, 3))
    seeds = services["emqx1"]["environment"]["EMQX_CLUSTER__STATIC__SEEDS"]
    assert seeds.strip("[]").split(",") == names
    for i in (1, 2, 3):
        assert services[f"emqx{i}"]["hostname"] == names[i - 1].split("@")[1]


def test_brokers_keep_the_limits_the_hub_relies_on() -> None:
    emqx = (DEPLOY / "emqx" / "base.hocon").read_text()
    packet_kib = re.search(r"max_packet_size = (\d+)KB", emqx).group(1)  # type: ignore[union-attr]
    assert int(packet_kib) * 1024 == MAX_PAYLOAD_BYTES
    queue = int(re.search(r"max_mqueue_len = (\d+)", emqx).group(1))  # type: ignore[union-attr]
    assert queue >= 1_000_000  # EMQX drops the oldest beyond it (default 1,000)
    vernemq = dict(line.split(" = ", 1) for line in
                   (DEPLOY / "vernemq" / "vernemq.conf").read_text().splitlines()
                   if line.strip() and not line.startswith("#"))
    assert vernemq["max_message_size"] == str(MAX_PAYLOAD_BYTES)
    assert vernemq["max_offline_messages"] == "-1"  # the default 1,000 loses readings
    assert vernemq["allow_anonymous"] == "off"
    assert vernemq["shared_subscription_policy"] in {"prefer_local", "local_only", "random"}


def test_hub_processes_share_the_readings_each_with_its_own_session(
        compose: dict[str, Any]) -> None:
    hubs = {n: s for n, s in compose["services"].items() if n.startswith("hub")}
    assert len(hubs) == 2
    client_ids = set()
    for name, service in hubs.items():
        env = {key: re.sub(r"\$\{[^}]+\}", "secret", str(value))
               for key, value in service["environment"].items()}
        data, origins = env_overrides(HubSettings, env)
        assert {o.removeprefix("environment: ") for o in origins.values()} == set(env), name
        mount = next(v for v in service["volumes"] if v.endswith(":/etc/fabcity/hub.toml:ro"))
        settings = load_settings(HubSettings, DEPLOY / mount.split(":")[0])
        merged = HubSettings.model_validate(settings.model_dump() | {
            "mqtt": settings.mqtt.model_dump() | data.get("mqtt", {}),
            "storage": settings.storage.model_dump() | data.get("storage", {})})
        assert merged.mqtt.shared_group == "fabcity-hub"
        assert merged.mqtt.protocol == "v5"
        host = re.match(r"http://([^:]+):", str(data["storage"]["url"])).group(1)  # type: ignore[union-attr]
        assert host in compose["services"], f"{name} stores in {host}, not a service"
        client_ids.add(merged.mqtt.client_id)
        check_storage_options(merged.storage, name)
    assert len(client_ids) == 2  # one persistent session per process


def test_victoriametrics_nodes_are_wired_to_each_other(compose: dict[str, Any]) -> None:
    services = compose["services"]
    storage = sorted(n for n in services if n.startswith("vmstorage-"))
    assert len(storage) >= 2
    assert _flag_values(services["vminsert"]["command"], "storageNode") == [
        f"{n}:8400" for n in storage]
    select = services["vmselect"]["command"]
    assert _flag_values(select, "storageNode") == [f"{n}:8401" for n in storage]
    for node in [*storage, "vmselect"]:  # a replayed reading is kept once
        assert "-dedup.minScrapeInterval=1ms" in services[node]["command"]
    vm = load_settings(HubSettings, DEPLOY / "hub.cluster-vm.toml")
    assert str(check_storage_options(vm.storage, "hub.cluster-vm.toml").url).startswith(  # type: ignore[attr-defined]
        "http://vminsert:8480/insert/0/")


def test_influxdb3_nodes_share_one_object_store(compose: dict[str, Any]) -> None:
    nodes = {n: s["command"] for n, s in compose["services"].items()
             if n.startswith("influxdb3-")}
    assert len(nodes) == 2
    ids = {cmd[cmd.index("--node-id") + 1] for cmd in nodes.values()}
    assert len(ids) == 2
    for cmd in nodes.values():
        assert cmd[cmd.index("--cluster-id") + 1] == "fabcity"
        assert cmd[cmd.index("--bucket") + 1] == "fabcity"
        assert cmd[cmd.index("--aws-endpoint") + 1] == "http://minio:9000"
    modes = [cmd[cmd.index("--mode") + 1] for cmd in nodes.values()]
    assert sum("compact" in m for m in modes) == 1  # exactly one compactor per cluster
