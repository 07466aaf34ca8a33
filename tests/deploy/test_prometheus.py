"""deploy/: Prometheus config, rules and their unit tests, and the Grafana dashboard's queries.

promtool validates PromQL offline: every dashboard query, written as a recording rule into a
temporary rules file, must pass `promtool check rules`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "lapor-hub.json"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found; `apt-get install prometheus` enables this test"
)
pytestmark = pytest.mark.prometheus


@dataclass(frozen=True, slots=True)
class Query:
    panel: str
    ref: str
    expr: str
    """With every template variable replaced by its "All" value."""


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows only group them)."""
    return [p for p in board["panels"] if p["type"] != "row"]


def with_all_values(board: dict[str, Any], expr: str) -> str:
    """Each variable at "All": its custom all-value, or (none given) every value, as `.*`."""
    for variable in board["templating"]["list"]:
        expr = expr.replace(f"${variable['name']}", variable.get("allValue", ".*"))
    return expr


def test_all_agencies_are_the_agencies_of_the_regions_chosen() -> None:
    # With a custom all-value, "All" agencies was `.*` whatever the region: a region chosen
    # changed none of the per-agency panels. Without one, Grafana lists the agencies its
    # query found, and that query is filtered by the region.
    (agency,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "agency"]
    assert "$region" in agency["query"]["query"]
    assert agency["includeAll"] and "allValue" not in agency


def panel_queries() -> list[Query]:
    board = dashboard()
    return [
        Query(p["title"], t["refId"], with_all_values(board, t["expr"]))
        for p in panels(board)
        for t in p["targets"]
    ]


def promtool(*args: str | Path) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{done.stdout}{done.stderr}"
    return done.stdout


@needs_promtool
def test_the_scrape_config_is_valid() -> None:
    out = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert f"{len(RULE_FILES)} rule files found" in out


@needs_promtool
def test_the_rules_are_valid() -> None:
    promtool("check", "rules", *RULE_FILES)


@needs_promtool
def test_the_rules_pass_their_unit_tests() -> None:
    promtool("test", "rules", *RULE_TESTS)


def test_every_alert_is_proven_to_fire_and_to_stay_quiet() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text("utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    assert alerts, "no alerts found"
    assert alerts - fires == set(), "alerts never shown to fire"
    assert alerts - quiet == set(), "alerts never shown to stay quiet"


def test_every_metric_the_rules_and_dashboard_name_exists() -> None:
    """A misspelt name is no error to Prometheus, only an empty panel or a silent alert."""
    exposed = {"up"}
    for family in metrics.REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        exposed.update(family.name + s for s in suffixes.get(family.type, [""]))
    recorded: set[str] = set()
    text = ""
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]:
            for rule in group["rules"]:
                recorded.update([rule["record"]] if "record" in rule else [])
                text += rule["expr"] + "\n"
    text += "\n".join(q.expr for q in panel_queries())
    text += "\n".join(v["definition"] for v in dashboard()["templating"]["list"])
    text = re.sub(r'"[^"]*"', '""', text)  # label values are no names
    names = set(re.findall(r"[a-z_]*:[a-z0-9_:]+|\blapor_[a-z0-9_]+", text))
    assert names - recorded - exposed == set()


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    board = dashboard()
    rules = [
        {"record": f"dashboard:panel_{i}", "expr": q.expr} for i, q in enumerate(panel_queries())
    ]
    # Variables are filled by label_values(selector, label), Grafana's: check the selector.
    for variable in board["templating"]["list"]:
        found = re.fullmatch(r"label_values\((.+), *\w+\)", variable["definition"])
        assert found, variable["definition"]
        selector = with_all_values(board, found.group(1))
        rules.append({"record": f"dashboard:variable_{variable['name']}", "expr": selector})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert all("$" not in r["expr"] for r in rules), "a template variable is left unfilled"
    out = promtool("check", "rules", path)
    assert f"{len(rules)} rules found" in out


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text("utf-8")
    )["datasources"]
    uid = datasources[0]["uid"]
    assert 38 <= board["schemaVersion"] <= 41
    assert board["uid"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    titles = [p["title"] for p in panels(board)]
    assert len(titles) == len(set(titles)), "panel titles repeat"
    for p in panels(board):
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"], p["title"]
            assert t["expr"].strip(), p["title"]
        box = p["gridPos"]
        assert box["x"] + box["w"] <= 24, p["title"]
    # Grafana pushes a panel laid over another elsewhere, out of its row.
    boxes = [(p["title"], p["gridPos"]) for p in board["panels"]]
    for n, (one, a) in enumerate(boxes):
        for other, b in boxes[n + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, f"{one} lies over {other}"
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid
    used = {name for q in dashboard()["panels"] for t in q.get("targets", [])
            for name in re.findall(r"\$(\w+)", t["expr"])}
    assert used <= {v["name"] for v in board["templating"]["list"]}

