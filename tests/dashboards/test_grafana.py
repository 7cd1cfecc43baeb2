"""The Grafana provisioning and dashboards hold together, checked without a Grafana server.

Every panel's data source is one the provisioning creates; every InfluxQL query reads the
hub's schema (catalogued measurements, its tags and fields, its retention policies); every
PromQL expression selects a series the hub exposes; every variable a query uses is defined.
The queries themselves run against a real InfluxDB in test_grafana_queries.py.
"""

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

from fabcity.catalogue import CATALOGUE
from hub.metrics import HubMetrics
from tests.dashboards.grafana import (
    DASHBOARDS,
    PROVISIONING,
    ROOT,
    dashboards,
    influxql_identifiers,
    influxql_sources,
    load_yaml,
    panels,
    promql_grouping_labels,
    promql_series,
    target_uid,
    targets,
    variables_used,
)

Json = dict[str, Any]

# Changing a uid breaks every bookmark and link to the dashboard: these stay.
STABLE_UIDS = {"city-operations.json": "fabcity-city-operations",
               "air-quality.json": "fabcity-air-quality",
               "fablab-machines.json": "fabcity-fablab-machines"}
SCHEMA_TAGS = {"site", "device", "sensor", "unit"}
SCHEMA_FIELDS = {"value", "flags", "count", "sum", "min", "max", "first", "last", "increase"}
ROLLUP_RPS = {"fabcity_1m", "fabcity_1h", "rollup_1m", "rollup_1h"}  # 1.x and 2.x/3.x names
# Measurements outside the catalogue a dashboard may read, with the unit it must filter on
# (a metric outside the catalogue is stored with whatever unit its device declares).
UNCATALOGUED = {"no2": "ug/m3"}
ALL_DASHBOARDS = dashboards()


def hub_series() -> dict[str, set[str]]:
    """Every series name ``GET /metrics`` can expose, with its labels."""
    def names(family: Metric) -> list[str]:
        if family.type == "counter":
            return [family.name + "_total"]
        if family.type == "histogram":
            return [family.name + suffix for suffix in ("_bucket", "_count", "_sum")]
        return [family.name]

    metrics = HubMetrics()
    out: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():
            for name in names(family):
                out[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return out


@pytest.fixture(scope="module")
def compose() -> Json:
    return load_yaml(ROOT / "deploy" / "compose.yaml")


@pytest.fixture(scope="module")
def datasources() -> dict[str, Json]:
    config = load_yaml(PROVISIONING / "datasources" / "fabcity.yaml")
    assert config["apiVersion"] == 1
    return {source["uid"]: source for source in config["datasources"]}


def variable_names(dashboard: Json) -> set[str]:
    return {variable["name"] for variable in dashboard["templating"]["list"]}


def test_datasources_provision_influxql_and_prometheus(datasources: dict[str, Json]) -> None:
    influx = datasources["fabcity-influxdb"]
    assert influx["type"] == "influxdb" and influx["access"] == "proxy"
    assert influx["jsonData"]["version"] == "InfluxQL"
    assert influx["jsonData"]["dbName"] == "fabcity"
    assert datasources["fabcity-prometheus"]["type"] == "prometheus"
    assert set(datasources) == {"fabcity-influxdb", "fabcity-prometheus"}
    for source in datasources.values():
        assert {"name", "uid", "type", "access", "url"} <= set(source)


def test_datasource_urls_come_from_variables_compose_gives_defaults(
        datasources: dict[str, Json], compose: Json) -> None:
    environment = compose["services"]["grafana"]["environment"]
    text = str(load_yaml(PROVISIONING / "datasources" / "fabcity.yaml"))  # values, no comments
    for source in datasources.values():
        url = source["url"]
        assert url.startswith("$"), f"{source['uid']}: url {url} is not a variable"
        default = str(environment[url.lstrip("${").rstrip("}")])
        assert default.startswith("${") and ":-http://" in default, (
            f"compose gives {url} no default URL: {default}")
    for name in variables_used(text):
        assert name in environment, f"compose's grafana service does not set ${name}"


def test_dashboard_provider_reads_the_folder_compose_mounts(compose: Json) -> None:
    config = load_yaml(PROVISIONING / "dashboards" / "fabcity.yaml")
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    path = provider["options"]["path"]
    assert mounts.get("../dashboards/grafana/dashboards") == path
    assert mounts.get("../dashboards/grafana/provisioning") == "/etc/grafana/provisioning"


def test_dashboard_uids_are_unique_and_stable() -> None:
    assert {name: d["uid"] for name, d in ALL_DASHBOARDS.items()} == STABLE_UIDS
    assert len({d["title"] for d in ALL_DASHBOARDS.values()}) == len(ALL_DASHBOARDS)


@pytest.mark.parametrize("name", sorted(ALL_DASHBOARDS))
def test_dashboard_is_a_current_model_with_unique_panel_ids(name: str) -> None:
    dashboard = ALL_DASHBOARDS[name]
    assert dashboard["schemaVersion"] >= 39  # Grafana 11 and later
    assert "id" not in dashboard or dashboard["id"] is None  # provisioning assigns it
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    for panel in panels(dashboard):
        assert {"type", "title", "gridPos"} <= set(panel)
        assert panel["type"] == "row" or panel.get("targets"), f"{panel['title']}: no query"


@pytest.mark.parametrize("name", sorted(ALL_DASHBOARDS))
def test_every_panel_uses_a_provisioned_datasource(
        name: str, datasources: dict[str, Json]) -> None:
    dashboard = ALL_DASHBOARDS[name]
    for panel, target in targets(dashboard):
        assert target_uid(panel, target) in datasources, f"{panel['title']}: {target}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] in datasources


@pytest.mark.parametrize("name", sorted(ALL_DASHBOARDS))
def test_site_and_device_variables_come_from_influxdb_tags(name: str) -> None:
    variables = {v["name"]: v for v in ALL_DASHBOARDS[name]["templating"]["list"]}
    assert variables["site"]["query"] == 'SHOW TAG VALUES WITH KEY = "site"'
    device = variables["device"]["query"]
    assert device.startswith("SHOW TAG VALUES") and 'WITH KEY = "device"' in device
    assert '"site" =~ /^$site$/' in device, "device is not filtered by the chosen site"


@pytest.mark.parametrize("name", sorted(ALL_DASHBOARDS))
def test_queries_use_only_defined_variables(name: str) -> None:
    dashboard = ALL_DASHBOARDS[name]
    defined = variable_names(dashboard)
    texts = [t.get("query") or t.get("expr", "") for _, t in targets(dashboard)]
    texts += [v.get("query", "") for v in dashboard["templating"]["list"]
              if v["type"] == "query"]
    for text in texts:
        assert variables_used(text) <= defined, f"undefined variable in {text}"


@pytest.mark.parametrize("name", sorted(ALL_DASHBOARDS))
def test_influxql_reads_only_the_hub_schema(name: str) -> None:
    dashboard = ALL_DASHBOARDS[name]
    queries = [t["query"] for panel, t in targets(dashboard)
               if target_uid(panel, t) == "fabcity-influxdb"]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert queries
    for query in queries:
        sources = influxql_sources(query)
        for rp, measurement in sources:
            assert measurement in CATALOGUE or measurement in UNCATALOGUED, (
                f"{measurement} is not a catalogued metric: {query}")
            if measurement in UNCATALOGUED:
                assert f"\"unit\" = '{UNCATALOGUED[measurement]}'" in query
            if rp is not None:
                assert {rp.replace("${rollups}", prefix) for prefix in ("fabcity", "rollup")
                        } <= ROLLUP_RPS, f"unknown retention policy {rp}"
        assert influxql_identifiers(query) <= SCHEMA_TAGS | SCHEMA_FIELDS, query
        if query.startswith("SELECT"):
            assert "$timeFilter" in query or "now() -" in query, f"unbounded: {query}"


def test_rollup_variable_offers_both_influxdb_generations() -> None:
    for dashboard in ALL_DASHBOARDS.values():
        if "${rollups}" not in str(dashboard["panels"]):
            continue
        (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "rollups"]
        assert {o["value"] for o in variable["options"]} == {"fabcity", "rollup"}
        assert variable["current"]["value"] == "fabcity"


@pytest.mark.parametrize("name", sorted(ALL_DASHBOARDS))
def test_promql_selects_series_the_hub_exposes(name: str) -> None:
    series = hub_series()
    for panel, target in targets(ALL_DASHBOARDS[name]):
        if target_uid(panel, target) != "fabcity-prometheus":
            continue
        expr = target["expr"]
        used = promql_series(expr)
        assert used and used <= set(series), f"{panel['title']}: {used - set(series)}"
        labels = set().union(*(series[s] for s in used))
        assert promql_grouping_labels(expr) <= labels, f"{panel['title']}: unknown label"


def test_hub_series_parsed_from_hub_metrics() -> None:
    series = hub_series()
    assert series["fabcity_rejected_total"] == {"reason"}
    assert "fabcity_storage_write_seconds_bucket" in series
    assert "fabcity_mqtt_connected" in series and "fabcity_readings_stored" not in series


def test_city_operations_shows_what_operations_md_says_to_watch() -> None:
    exprs = " ".join(t.get("expr", "") for _, t in
                     targets(ALL_DASHBOARDS["city-operations.json"]))
    for series in ("fabcity_readings_stored_total", "fabcity_rejected_total",
                   "fabcity_ingest_pending_messages", "fabcity_storage_available",
                   "fabcity_readings_dead_lettered_total", "fabcity_storage_write_seconds_bucket",
                   "fabcity_mqtt_connected"):
        assert series in exprs
    assert "histogram_quantile(0.99," in exprs


def test_air_quality_colours_follow_epa_2024_bands() -> None:
    stat = next(p for p in panels(ALL_DASHBOARDS["air-quality.json"])
                if p["title"] == "PM2.5 now (15-min mean)")
    steps = stat["fieldConfig"]["defaults"]["thresholds"]["steps"]
    # a band starts one tenth above the previous band's top (PM2.5 is truncated to 0.1)
    assert [s["value"] for s in steps] == [None, 9.1, 35.5, 55.5, 125.5, 225.5]
    assert [s["color"] for s in steps][-1] == "#7E0023"


def test_docs_say_no_grafana_runs_in_the_tests() -> None:
    text = (ROOT / "docs" / "grafana.md").read_text()
    assert "No Grafana server runs in the test suite" in text
    for name in ALL_DASHBOARDS:
        assert f"dashboards/{name}" in text
    assert "grafana.md" in (ROOT / "docs" / "operations.md").read_text()
    assert Path(DASHBOARDS).is_dir()
