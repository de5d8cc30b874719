"""Tier 2, the monitoring files: Prometheus's configuration and alert rules pass promtool
(the rules' unit tests too), Alertmanager's pass amtool and route the drift alerts to the
retraining relay (where a CI runs training) whose request the CI's training workflow accepts,
and the Grafana dashboard's queries parse and use the provisioned data source."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import urllib.parse

import pytest
import yaml

from deployment import MONITORING_SETS, deploy_answer, documents, run, slug_of

PROMTOOL_TESTED: dict[str, str] = {}  # rules and tests with the slug taken out -> transcript


@pytest.mark.parametrize("name", MONITORING_SETS)
def test_prometheus_alertmanager_and_alert_rules_are_valid(name, rendered, debian_tool):
    project = rendered(name)
    promtool = debian_tool("promtool", "prometheus")
    run([promtool, "check", "config", "monitoring/prometheus.yml"], cwd=project)
    run([promtool, "check", "rules", "monitoring/alerts.yml"], cwd=project)
    # The rules and their unit tests differ between answer sets only by the scrape job's
    # name: `promtool test rules` (5 s, two days of evaluations) runs once per distinct pair,
    # with the job's name taken out.
    config = yaml.safe_load((project / "monitoring/prometheus.yml").read_text())
    job = next(c["job_name"] for c in config["scrape_configs"] if c["job_name"] != "prometheus")
    shape = "\0".join(
        (project / "monitoring" / name).read_text().replace(job, "<job>")
        for name in ("alerts.yml", "alerts.test.yml")
    )
    if shape not in PROMTOOL_TESTED:
        PROMTOOL_TESTED[shape] = run(
            [promtool, "test", "rules", "monitoring/alerts.test.yml"], cwd=project
        )
    assert "SUCCESS" in PROMTOOL_TESTED[shape]
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    run([amtool, "check-config", "monitoring/alertmanager.yml"], cwd=project)
    prometheus = yaml.safe_load((project / "monitoring/prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    assert ("api:8000" if deploy_answer(name, "docker") else "127.0.0.1:8000") in targets
    rules = documents(project / "monitoring/alerts.yml")[0]
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    unit_tests = (project / "monitoring/alerts.test.yml").read_text()
    untested = {alert for alert in alerts if f"alertname: {alert}" not in unit_tests}
    assert not untested, f"alerts without a promtool unit test: {sorted(untested)}"


RETRAINING_ALERTS = {"DataDrift", "PredictionDrift"}


def dispatch_constants(project) -> dict:
    """WORKFLOW, INPUTS and VARIABLES of the rendered relay (monitoring/dispatch.py)."""
    (source,) = project.glob("src/*/monitoring/dispatch.py")
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source.read_text()).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").isupper()
        if node.targets[0].id in ("WORKFLOW", "INPUTS", "VARIABLES")
    }


@pytest.mark.parametrize("name", MONITORING_SETS)
def test_drift_alerts_reach_the_relay_and_the_ci_takes_its_request(name, rendered, debian_tool):
    """amtool routes each alert of alerts.yml: the drift ones to the relay's webhook (where a
    CI runs training), the others to `default`; the relay's address is where it listens; the
    CI's training workflow accepts the inputs or variables the relay sends."""
    project = rendered(name)
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    ci, docker = deploy_answer(name, "ci_provider"), deploy_answer(name, "docker")
    rules = documents(project / "monitoring/alerts.yml")[0]
    for alert in {rule["alert"] for group in rules["groups"] for rule in group["rules"]}:
        routed = subprocess.run(
            [amtool, "config", "routes", "test", "--config.file=monitoring/alertmanager.yml",
             f"alertname={alert}", "severity=warning"],
            cwd=project, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        relayed = alert in RETRAINING_ALERTS and ci != "none"
        assert routed == ("retrain" if relayed else "default"), alert
    text = (project / "monitoring/alertmanager.yml").read_text()
    config = yaml.safe_load(text)
    webhooks = [w for r in config["receivers"] for w in r.get("webhook_configs", [])]
    if ci == "none":
        assert webhooks == [] and "`make train`" in text and "retrain-relay" in text
        return
    (webhook,) = webhooks
    address = urllib.parse.urlsplit(webhook["url"])
    assert address.path == "/alerts"
    if docker:
        relay = yaml.safe_load((project / "compose.yaml").read_text())["services"]["retrain-relay"]
        command = relay["command"]
        assert command[1] == "retrain-relay" and address.hostname == "retrain-relay"
        assert str(address.port) == command[command.index("--port") + 1]
    else:
        assert (address.hostname, address.port) == ("127.0.0.1", 9095), "the command's defaults"
    sent = dispatch_constants(project)
    if ci == "github":
        workflow = documents(project / ".github/workflows" / sent["WORKFLOW"])[0]
        accepted = (workflow.get("on") or workflow[True])["workflow_dispatch"]["inputs"]
        assert set(accepted) == set(sent["INPUTS"])
        assert all(not spec.get("required") for spec in accepted.values()), "by hand, too"
    else:
        train = documents(project / ".gitlab-ci.yml")[0]["train"]
        assert {"if": '$CI_PIPELINE_SOURCE == "trigger"'} in train["rules"]
        script = "\n".join(train["script"])
        assert all(re.search(rf"\$\{{?{name}\b", script) for name in sent["VARIABLES"])


@pytest.mark.parametrize("name", MONITORING_SETS)
def test_grafana_dashboard_queries_parse_and_use_the_provisioned_source(
    name, rendered, answers_of, debian_tool, tmp_path
):
    project = rendered(name)
    grafana = project / "monitoring/grafana"
    source = documents(grafana / "provisioning/datasources/prometheus.yml")[0]["datasources"][0]
    dashboard = json.loads((grafana / "dashboards/service.json").read_text())
    assert dashboard["uid"] == f"{slug_of(answers_of(name))}-service"
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(panels) >= 8
    exprs = []
    for panel in panels:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], f"panel '{panel['title']}' has no query"
        exprs += [target["expr"].replace("$job", "job") for target in panel["targets"]]
    # promtool parses PromQL only inside rule files: one recording rule per query.
    rule_file = tmp_path / "dashboard-queries.yml"
    recorded = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    run([debian_tool("promtool", "prometheus"), "check", "rules", rule_file])
    provider = documents(grafana / "provisioning/dashboards/dashboards.yml")[0]["providers"][0]
    if deploy_answer(name, "docker"):
        stack = yaml.safe_load((project / "compose.yaml").read_text())
        mounts = stack["services"]["grafana"]["volumes"]
        assert f"./monitoring/grafana/dashboards:{provider['options']['path']}:ro" in mounts
