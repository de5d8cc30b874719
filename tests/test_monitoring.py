"""Tier 4: the rendered project's monitoring against real parts.

In the default rendering: train, serve on loopback, and let a real Prometheus (Debian package)
scrape the service with the rendered alert rules. The project's own simulator sends the
traffic the rendered README shows (500 requests like the training data, then 500 drifted
ones); Prometheus's query API must return the request counter and the latency histogram; the
drift job must pass the clean window and flag the drifted one, Prometheus must see that verdict
and fire the DataDrift alert; and the drift report must render in headless Chromium.
"""

import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import (
    browse,
    chromium,
    free_port,
    install_rendering,
    python_for,
    read_answers,
    wait_for,
    wait_until_answers,
)

pytestmark = pytest.mark.slow

SCREENSHOT = Path("/tmp/copier-mlops-artifacts/drift-report.png")
# Names a PromQL expression may use that are not metrics.
PROMQL_WORDS = {
    "sum", "rate", "increase", "max", "min", "by", "le", "or", "vector", "time", "absent",
    "histogram_quantile", "job", "route", "status", "feature", "statistic", "outcome",
    "metric", "name", "version", "backend", "up", "variant",
}  # fmt: skip


def prometheus_query(base: str, expression: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]["result"]


def metric_names(expression: str) -> set[str]:
    """Metric names in a PromQL expression (label names and functions left out)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expression)
    without_templates = re.sub(r"\$\w+", "", without_labels)
    names = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", without_templates)) - PROMQL_WORDS
    return {name.removesuffix("_bucket") for name in names}


@pytest.fixture(scope="module")
def stack(workspace, debian_tool, tmp_path_factory):
    """The trained default project served on loopback, scraped by a real Prometheus."""
    folder = workspace("defaults")
    answers = read_answers(folder)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} HERE: cannot install the rendering")
    prometheus_binary = debian_tool("prometheus", "prometheus")
    work = tmp_path_factory.mktemp("monitoring")
    # A 2-core machine running other tests stalls a request now and then: no shedding here
    # (the rendered load tests judge shedding).
    project = install_rendering(
        folder, work, MODEL_URI=str(work / "models" / "model"), MAX_QUEUE_DELAY_MS="5000"
    )
    cli, slug = project.cli, project.slug
    cli("train")
    port, prometheus_port = free_port(), free_port()
    service = project.serve(port)
    # The rendered configuration, pointed at this service and made quick to scrape and evaluate.
    config = yaml.safe_load((folder / "monitoring/prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(folder / "monitoring/alerts.yml")]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == slug]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    config["scrape_configs"] = [job]
    config.pop("alerting")
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = subprocess.Popen(
        [prometheus_binary, f"--config.file={work / 'prometheus.yml'}",
         f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w"),  # noqa: SIM115
    )  # fmt: skip
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/ready", service, timeout=120)
        wait_until_answers(f"http://127.0.0.1:{prometheus_port}/-/ready", prometheus, timeout=60)
        yield {
            "folder": folder,
            "work": work,
            "cli": cli,
            "service": f"http://127.0.0.1:{port}",
            "prometheus": f"http://127.0.0.1:{prometheus_port}",
            "slug": slug,
            "env": project.env,
        }
    finally:
        for process in (service, prometheus):
            process.terminate()
            process.wait(timeout=30)


def test_prometheus_scrapes_traffic_and_sees_drift(stack):
    cli, slug, prometheus = stack["cli"], stack["slug"], stack["prometheus"]
    work = stack["work"]

    # The rendered README's sequence: clean traffic passes, drifted traffic is flagged.
    sent = cli("simulate", "--url", stack["service"], "--requests", "500")
    assert "sent 500 requests (500 records answered)" in sent
    clean = cli("monitor")
    drift = json.loads((work / "logs/monitoring/drift.json").read_text())
    assert drift["healthy"] and drift["window"] == 500, clean
    print("\nclean window:\n" + clean)

    # Prometheus holds the request counter and the latency histogram of that traffic.
    counted = wait_for(
        lambda: [
            r
            for r in prometheus_query(
                prometheus, f'sum(http_requests_total{{job="{slug}", route="/predict"}})'
            )
            if float(r["value"][1]) >= 500
        ],
        60,
        "Prometheus to count 500 requests to /predict",
    )
    assert float(counted[0]["value"][1]) >= 500
    buckets = prometheus_query(
        prometheus, f'http_request_duration_seconds_bucket{{job="{slug}", route="/predict"}}'
    )
    assert {b["metric"]["le"] for b in buckets} >= {"0.005", "0.01", "+Inf"}
    assert float(next(b for b in buckets if b["metric"]["le"] == "+Inf")["value"][1]) >= 500
    p99 = prometheus_query(
        prometheus,
        "histogram_quantile(0.99, sum by (le) "
        f'(rate(http_request_duration_seconds_bucket{{job="{slug}", route="/predict"}}[1m])))',
    )
    print(f"p99 of /predict as Prometheus computes it: {float(p99[0]['value'][1]) * 1000:.1f} ms")

    labels = work / "labels.csv"
    cli(
        "simulate", "--url", stack["service"], "--requests", "500", "--drift", "0.8",
        "--seed", "1", "--labels-out", str(labels),
    )  # fmt: skip
    flagged = cli("monitor", "--labels", str(labels), expect=1)
    drift = json.loads((work / "logs/monitoring/drift.json").read_text())
    print("drifted window:\n" + flagged)
    assert drift["dataset_drift"] and "breach:" in flagged
    assert drift["performance"]["labelled"] == 500

    # The service exposes the verdict; Prometheus scrapes it and the DataDrift alert fires.
    wait_for(
        lambda: prometheus_query(prometheus, f'drift_dataset_detected{{job="{slug}"}} == 1'),
        60,
        "Prometheus to scrape drift_dataset_detected = 1",
    )

    def data_drift_alert():
        with urllib.request.urlopen(f"{prometheus}/api/v1/alerts", timeout=10) as response:
            alerts = json.loads(response.read())["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "DataDrift"]

    alert = wait_for(data_drift_alert, 60, "the DataDrift alert")
    assert alert[0]["state"] in {"pending", "firing"}

    # Every metric the alert rules and the dashboard use is one the service really exposes.
    folder = stack["folder"]
    exposed = {
        r["metric"]["__name__"].removesuffix("_bucket")
        for r in prometheus_query(prometheus, f'{{job="{slug}"}}')
    }
    rules = yaml.safe_load((folder / "monitoring/alerts.yml").read_text())
    used = {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in metric_names(rule["expr"])
    }
    dashboard = json.loads((folder / "monitoring/grafana/dashboards/service.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            used |= metric_names(target["expr"])
    assert used and not used - exposed, f"used but never exposed: {sorted(used - exposed)}"


def test_the_drift_report_renders_in_headless_chromium(stack):
    report = stack["work"] / "logs/monitoring/drift.html"
    if not report.exists():
        pytest.skip("the drift job did not run (see the test before)")
    executable = chromium()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    steps = f"""
page.goto({report.as_uri()!r})
seen["images"] = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
seen["verdict"] = page.inner_text("#verdict")
page.screenshot(path={str(SCREENSHOT)!r}, full_page=True)
seen["title"] = page.title()
"""
    seen = browse(stack["folder"], stack["env"], executable, steps)
    assert seen["title"].startswith("Drift report")
    assert "Thresholds breached" in seen["verdict"]
    assert len(seen["images"]) >= 8 and all(width > 100 for width in seen["images"])
    assert SCREENSHOT.stat().st_size > 50_000
    print(f"\ndrift report screenshot: {SCREENSHOT} ({SCREENSHOT.stat().st_size} bytes)")
