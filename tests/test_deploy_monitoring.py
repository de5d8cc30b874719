"""Tier 2, the monitoring files: Prometheus's configuration and alert rules pass promtool
(the rules' unit tests too), Alertmanager's pass amtool, and the Grafana dashboard's queries
parse and use the provisioned data source."""

from __future__ import annotations

import json

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
