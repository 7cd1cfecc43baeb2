"""Reading the Grafana provisioning and dashboards the way Grafana would, for the tests.

No Grafana server runs in the test suite: these helpers walk the files and take their queries
apart so the tests can hold them against the hub's schema, metrics and a real InfluxDB.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"

# What Grafana itself defines: time range and interval macros, alias patterns.
BUILTIN_VARIABLES = {"timeFilter", "__interval", "__interval_ms", "__range", "__range_s",
                     "__range_ms", "__rate_interval", "__from", "__to", "__timeFilter"}
_VARIABLE_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")

Json = dict[str, Any]


def load_yaml(path: Path) -> Json:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def dashboards() -> dict[str, Json]:
    """Every dashboard file, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: Json) -> Iterator[Json]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets(dashboard: Json) -> Iterator[tuple[Json, Json]]:
    """(panel, target) for every query of the dashboard."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def target_uid(panel: Json, target: Json) -> str:
    """The data source a target runs on: its own, else its panel's."""
    source = target.get("datasource") or panel.get("datasource") or {}
    return str(source.get("uid"))


def variables_used(text: str) -> set[str]:
    """Names of the ``$var``, ``${var}`` and ``[[var]]`` references in ``text``."""
    found = set()
    for match in _VARIABLE_RE.finditer(text):
        name = next(group for group in match.groups() if group)
        if not name.startswith(("tag_", "col")):  # alias patterns: $tag_device, $col
            found.add(name)
    return found - BUILTIN_VARIABLES


# ------------------------------------------------------------------ InfluxQL
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FROM_RE = re.compile(r'\bFROM\s+((?:"[^"]*"(?:\."[^"]*")?\s*,\s*)*"[^"]*"(?:\."[^"]*")?)',
                      re.I)
_AS_RE = re.compile(r'\bAS\s+"([^"]+)"', re.I)


def influxql_sources(query: str) -> list[tuple[str | None, str]]:
    """(retention policy or None, measurement) of every FROM clause, subqueries included."""
    out: list[tuple[str | None, str]] = []
    for match in _FROM_RE.finditer(query):
        for item in re.split(r"\s*,\s*", match.group(1)):
            names = _QUOTED_RE.findall(item)
            out.append((names[0], names[1]) if len(names) == 2 else (None, names[0]))
    return out


def influxql_identifiers(query: str) -> set[str]:
    """Quoted identifiers outside FROM clauses, less the aliases the query defines (a
    subquery's ``AS "step"`` read by the outer query): the tags and fields used."""
    aliases = set(_AS_RE.findall(query))
    stripped = _AS_RE.sub("", _FROM_RE.sub("FROM ", query))
    return set(_QUOTED_RE.findall(stripped)) - aliases


def interpolate(query: str, start_ms: int, end_ms: int, interval: str,
                values: dict[str, str]) -> str:
    """The query as Grafana sends it: time filter in epoch milliseconds, ``$__interval``,
    and the dashboard's variables (``All`` of a regex-matched variable is ``.*``)."""
    query = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    query = query.replace("$__interval", interval)
    for name, value in values.items():
        query = query.replace("${" + name + "}", value).replace("$" + name, value)
    assert not re.search(r"\$\{?\w", query), f"uninterpolated variable left in {query}"
    return query


# ------------------------------------------------------------------ PromQL
_PROM_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                  "and", "or", "unless", "offset"}
_PROM_STRIP = [re.compile(p) for p in (r'"(?:[^"\\]|\\.)*"', r"\{[^}]*\}", r"\[[^\]]*\]",
                                        r"\b(?:by|without|on|ignoring)\s*\([^)]*\)")]
_PROM_WORD_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_PROM_GROUPING_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def promql_series(expr: str) -> set[str]:
    """Names of the series an expression selects (functions, keywords and labels left out)."""
    for pattern in _PROM_STRIP:
        expr = pattern.sub(" ", expr)
    words = set()
    for match in _PROM_WORD_RE.finditer(expr):
        if expr[match.end():].lstrip().startswith("("):  # a function call
            continue
        words.add(match.group())
    return {w for w in words if w not in _PROM_KEYWORDS}


def promql_grouping_labels(expr: str) -> set[str]:
    """Labels named in ``by (…)`` / ``without (…)`` clauses."""
    return {label.strip() for match in _PROM_GROUPING_RE.finditer(expr)
            for label in match.group(1).split(",") if label.strip()}
