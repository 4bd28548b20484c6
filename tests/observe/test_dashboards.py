"""deploy/: the Grafana dashboard is valid JSON and the alert rules valid YAML, and every metric they query
is one castproxy exports (a renamed metric fails here, not in someone's Grafana)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from support.metrics import parse

from castproxy.observe import AuditTrail, Observer

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\b((?:castproxy|process|python)_[a-z_]+)\b")


def exported() -> set[str]:
    """Metric names (histogram and counter series included) of an observer that has seen one of everything."""
    observer = Observer(AuditTrail(None))
    observer.tool_call("ws", "tool", "tool", "ok", 200, 0.01)
    observer.metrics.record_upstream("ws", 200)
    observer.sign_in("ws", outcome="ok", client_id="c")
    observer.sign_in_ended("ws", event="sign_out", client_id="c", grant="g", reason="r")
    observer.token_refresh("ws", outcome="ok")
    observer.record_reload(True)
    observer.metrics.set_active_sign_ins({"ws": 1})
    observer.metrics.set_drift([("ws", "compiled", 1)])
    return {name for name, _ in parse(observer.metrics.render().decode())}


def queried(expressions: list[str]) -> set[str]:
    return {name for expression in expressions for name in NAME.findall(expression)}


def test_grafana_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "castproxy-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    expressions += [variable.get("query", "") for variable in dashboard["templating"]["list"]]
    names = queried(expressions)
    assert len(dashboard["panels"]) >= 10 and len(names) >= 10
    assert names - exported() == set()
    assert {"castproxy_tool_calls_total", "castproxy_tool_call_duration_seconds_bucket",
            "castproxy_active_sign_ins"} <= names
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_alert_rules_query_only_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "castproxy-alerts.yaml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    names = queried(expressions)
    assert names and names - exported() == set()
