"""The deployment files agree with the code: compose, Dockerfile, systemd units, examples.

No Docker engine or systemd runs here, so these tests check what can be checked statically:
every file a deployment mounts exists, every ``FABCITY_…`` variable names a real setting,
every command line is one the CLI accepts.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from edge.config import EdgeSettings
from fabcity.cli import build_parser
from fabcity.config import env_overrides, load_settings, read_toml
from hub.config import HubSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# made by the operator, see docs/operations.md
USER_CREATED = {"fabcity.passwd", "hub.toml", "certs", "ca.pem"}


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_compose_mounts_exist_or_are_documented(compose: dict) -> None:  # type: ignore[type-arg]
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(("./", "../")):
                path = DEPLOY / source
                assert path.exists() or path.name in USER_CREATED, f"{name}: {source} missing"
                if path.name in USER_CREATED:
                    assert path.name in (ROOT / "docs" / "operations.md").read_text()
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_compose_hub_environment_names_real_settings(compose: dict) -> None:  # type: ignore[type-arg]
    env = {key: re.sub(r"\$\{[^}]+\}", "secret", str(value))
           for key, value in compose["services"]["hub"]["environment"].items()}
    data, origins = env_overrides(HubSettings, env)
    assert {o.removeprefix("environment: ") for o in origins.values()} == set(env), (
        "a FABCITY_ variable names no setting")
    settings = HubSettings.model_validate(data)
    assert settings.mqtt.url == "mqtts://mosquitto:8883"
    assert str(settings.mqtt.ca_file) == "/etc/fabcity/ca.pem"
    assert settings.api.host == "0.0.0.0"


def test_compose_builds_the_dockerfile_and_mounts_its_config(compose: dict) -> None:  # type: ignore[type-arg]
    build = compose["services"]["hub"]["build"]
    dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == ROOT / "Dockerfile"
    cmd = re.search(r'^CMD (\[.*\])$', dockerfile.read_text(), re.M)
    assert cmd is not None
    args = yaml.safe_load(cmd.group(1))
    config = args[args.index("--config") + 1]
    mounts = [v.split(":")[1] for v in compose["services"]["hub"]["volumes"]]
    assert config in mounts
    assert build_parser(args).parse_args(args).func is not None


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.service")),
                         ids=lambda p: p.name)
def test_systemd_units_run_a_command_the_cli_accepts(unit: Path) -> None:
    text = unit.read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", text, re.M)
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/fabcity")
    args = build_parser(argv[1:]).parse_args(argv[1:])
    assert args.func is not None
    assert "Restart=always" in text and "NoNewPrivileges=yes" in text


def test_example_configs_load() -> None:
    assert load_settings(HubSettings, DEPLOY / "hub.example.toml").api.port == 8000
    assert load_settings(HubSettings, DEPLOY / "hub.compose.toml").mqtt.client_id == "fabcity-hub"
    edge = load_settings(EdgeSettings, DEPLOY / "edge.example.toml")
    assert edge.sensors[0].driver == "simulated"


def test_mosquitto_config_keeps_the_measured_settings() -> None:
    lines = {line.split()[0]: line.split()[1:] for line in
             (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    assert lines["set_tcp_nodelay"] == ["true"]
    assert lines["persistence"] == ["true"]
    assert lines["allow_anonymous"] == ["false"]
    listeners = [line.split()[1:] for line in
                 (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines()
                 if line.startswith("listener ")]
    assert listeners == [["1883", "127.0.0.1"], ["8883"]]  # plain MQTT only on the loopback
    assert {"certfile", "keyfile", "cafile"} <= set(lines)
    assert read_toml(DEPLOY / "hub.example.toml")["mqtt"]["client_id"] == "fabcity-hub"


def test_compose_grafana_reads_the_provisioning_read_only(compose: dict) -> None:  # type: ignore[type-arg]
    grafana = compose["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana-oss:")
    assert "hub" in grafana["depends_on"] and "influxdb" in grafana["depends_on"]
    assert "../dashboards/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert all(v.endswith(":ro") for v in grafana["volumes"] if v.startswith("../"))
    password = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password == "${GRAFANA_ADMIN_PASSWORD:?set it in deploy/.env}"
    assert "GRAFANA_ADMIN_PASSWORD" in (ROOT / "docs" / "operations.md").read_text()


def test_compose_hub_stores_in_the_influxdb_grafana_reads(compose: dict) -> None:  # type: ignore[type-arg]
    storage = load_settings(HubSettings, DEPLOY / "hub.compose.toml").storage
    assert storage.backend == "influxdb"  # InfluxDB 2, as the compose file runs
    options = storage.options()
    assert options.url == "http://influxdb:8086"  # type: ignore[attr-defined]
    influx = compose["services"]["influxdb"]
    assert influx["image"].startswith("influxdb:2")
    init = influx["environment"]
    assert init["DOCKER_INFLUXDB_INIT_BUCKET"] == options.bucket  # type: ignore[attr-defined]
    assert init["DOCKER_INFLUXDB_INIT_ORG"] == options.org  # type: ignore[attr-defined]
    assert init["DOCKER_INFLUXDB_INIT_RETENTION"] == options.retention_raw
    assert "FABCITY_STORAGE__TOKEN" in init["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    assert "FABCITY_STORAGE__TOKEN" in compose["services"]["hub"]["environment"]
    assert "influxdb" in compose["services"]["hub"]["depends_on"]
    grafana_env = compose["services"]["grafana"]["environment"]
    assert grafana_env["FABCITY_INFLUXDB_URL"] == "${FABCITY_INFLUXDB_URL:-http://influxdb:8086}"
    datasources = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/datasources/fabcity.yaml").read_text())
    (influx,) = [d for d in datasources["datasources"] if d["type"] == "influxdb"]
    assert influx["jsonData"]["dbName"] == (options.database  # type: ignore[attr-defined]
                                            or options.bucket)  # type: ignore[attr-defined]


def test_compose_prometheus_scrapes_the_hub_metrics(compose: dict) -> None:  # type: ignore[type-arg]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    port = compose["services"]["hub"]["ports"][0].split(":")[-1]
    assert job["static_configs"][0]["targets"] == [f"hub:{port}"]
    grafana_env = compose["services"]["grafana"]["environment"]
    assert grafana_env["FABCITY_PROMETHEUS_URL"].endswith(":-http://prometheus:9090}")
