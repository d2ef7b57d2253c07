"""deploy/prometheus/alerts.yml and deploy/grafana/scim-bridge.json: the rules are valid and do what
they say (promtool), and every metric the rules and the dashboard's panels query is one /metrics
serves — a renamed metric must break this test, not an operator's dashboard at night."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.metrics_scrape import scrape
from tests.sync.conftest import World, make_world

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "scim-bridge.json"
METRIC = re.compile(r"\bscim_bridge_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:  # never a skip: an unchecked rule file is how a broken alert reaches production
        pytest.fail("promtool not found: install it (Debian: apt-get install prometheus; .ci/run does)")
    return found


def test_the_alert_rules_are_valid() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_alert_rules_fire_on_what_they_say() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", ALERTS_TEST.name], cwd=ALERTS_TEST.parent, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_cover_what_the_issue_asks() -> None:
    names = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    assert {
        "ScimBridgeBrakeEngaged",
        "ScimBridgeTargetQuarantined",
        "ScimBridgeSyncLagHigh",
        "ScimBridgeDeadLetters",
        "ScimBridgeAuditChainBroken",
        "ScimBridgeAuditChainLagging",
    } <= names


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """The metric families a bridge with both targets serves (sync on, so the sync gauges exist)."""
    tmp_path = tmp_path_factory.mktemp("monitoring")
    world: World
    for world in make_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db"):
        yield scrape(world.bridge.root, "admin-token-for-tests")[1]


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_the_dashboard_queries_only_metrics_that_exist(served: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "scim-bridge" and dashboard["panels"]
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"], panel
        for target in panel["targets"]:
            used |= set(METRIC.findall(target["expr"]))
    missing = {name for name in used if family(name) not in served}
    assert not missing, f"the dashboard queries metrics /metrics does not serve: {sorted(missing)}"
    # what the issue asks the dashboard to show
    for wanted in ("queue_depth", "http_requests", "sync_lag_seconds", "target_requests", "target_state"):
        assert f"scim_bridge_{wanted}" in {family(n) for n in used}, wanted


def test_the_alert_rules_query_only_metrics_that_exist(served: set[str]) -> None:
    used = set(METRIC.findall(ALERTS.read_text()))
    missing = {name for name in used if family(name) not in served}
    assert not missing, f"the alert rules query metrics /metrics does not serve: {sorted(missing)}"
