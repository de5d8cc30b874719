"""Tier 4: the rendered project's monitoring against real parts.

In the default rendering: train, serve on loopback, and let a real Prometheus (Debian package)
scrape the service with the rendered alert rules. The project's own simulator sends the
traffic the rendered README shows (500 requests like the training data, then 500 drifted
ones); Prometheus's query API must return the request counter and the latency histogram; the
drift job must pass the clean window and flag the drifted one, Prometheus must see that verdict
and fire the DataDrift alert; a real Alertmanager (Debian package), configured from the rendered
alertmanager.yml, must route it to the project's retraining relay (`retrain-relay`), which must
send exactly one workflow_dispatch of train.yml, with the drift report, to a local server standing
in for GitHub's API; and the drift report must render in headless Chromium.
"""

import json
import re
import subprocess
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

# One process runs the module, in order: its tests share one stack and each builds on the one
# before (`make test` hands a group of tests to one process).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitoring")]

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


class GitHubStandIn(ThreadingHTTPServer):
    """A local server standing in for GitHub's API: records each request, answers 204 as the
    dispatch endpoint does."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                recorded.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers),
                     "body": json.loads(body)}
                )  # fmt: skip
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, args=(0.1,), daemon=True).start()


def alertmanager_config(folder: Path, relay: str) -> dict:
    """The rendered alertmanager.yml, made quick (alerts grouped for a second) and pointed at
    the relay on loopback."""
    config = yaml.safe_load((folder / "monitoring/alertmanager.yml").read_text())
    config["route"] |= {"group_wait": "1s", "group_interval": "2s"}
    (route,) = config["route"]["routes"]
    route["repeat_interval"] = "4s"  # Alertmanager repeats itself within the test
    (receiver,) = [r for r in config["receivers"] if r.get("webhook_configs")]
    (webhook,) = receiver["webhook_configs"]
    webhook["url"] = urllib.parse.urlsplit(webhook["url"])._replace(netloc=relay).geturl()
    return config


def metric_names(expression: str) -> set[str]:
    """Metric names in a PromQL expression (label names and functions left out)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expression)
    without_templates = re.sub(r"\$\w+", "", without_labels)
    names = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", without_templates)) - PROMQL_WORDS
    return {name.removesuffix("_bucket") for name in names}


def prometheus_config(folder: Path, slug: str, service: str, alertmanager: str) -> dict:
    """The rendered prometheus.yml, pointed at this service and this Alertmanager, and made
    quick to scrape and evaluate."""
    config = yaml.safe_load((folder / "monitoring/prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(folder / "monitoring/alerts.yml")]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == slug]
    job["static_configs"] = [{"targets": [service]}]
    config["scrape_configs"] = [job]
    (manager,) = config["alerting"]["alertmanagers"]
    manager["static_configs"] = [{"targets": [alertmanager]}]
    return config


def relay_env(project, github: GitHubStandIn) -> dict[str, str]:
    """The settings of the retraining relay, as the README sets them, for the stand-in."""
    settings = {
        "RETRAIN_REPOSITORY": "acme/churn",
        "RETRAIN_TOKEN": "token-of-the-test",
        "RETRAIN_API_URL": f"http://127.0.0.1:{github.server_port}",
        "LOG_FORMAT": "text",
    }
    return project.env | {f"{project.package.upper()}_{k}": v for k, v in settings.items()}


@pytest.fixture(scope="module")
def stack(workspace, debian_tool, tmp_path_factory):
    """The trained default project served on loopback, scraped by a real Prometheus whose
    alerts go to a real Alertmanager, which sends drift to the project's retraining relay."""
    folder = workspace("defaults")
    answers = read_answers(folder)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} HERE: cannot install the rendering")
    prometheus_binary = debian_tool("prometheus", "prometheus")
    alertmanager_binary = debian_tool("prometheus-alertmanager", "prometheus-alertmanager")
    work = tmp_path_factory.mktemp("monitoring")
    # A 2-core machine running other tests stalls a request now and then: no shedding here
    # (the rendered load tests judge shedding).
    project = install_rendering(
        folder, work, MODEL_URI=str(work / "models" / "model"), MAX_QUEUE_DELAY_MS="5000"
    )
    cli, slug = project.cli, project.slug
    cli("train")
    port, prometheus_port, alertmanager_port, relay_port = (free_port() for _ in range(4))
    config = prometheus_config(folder, slug, f"127.0.0.1:{port}", f"127.0.0.1:{alertmanager_port}")
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    config = alertmanager_config(folder, f"127.0.0.1:{relay_port}")
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
    github = GitHubStandIn()

    def start(command: list, log: str, **options) -> subprocess.Popen:
        return subprocess.Popen(
            [str(part) for part in command], stdout=subprocess.DEVNULL,
            stderr=open(work / log, "w"), **options,  # noqa: SIM115
        )  # fmt: skip

    processes = [project.serve(port)]
    try:
        processes.append(start(
            [prometheus_binary, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            "prometheus.log",
        ))  # fmt: skip
        processes.append(start(
            [alertmanager_binary, f"--config.file={work / 'alertmanager.yml'}",
             f"--storage.path={work / 'alertmanager'}", "--cluster.listen-address=",
             f"--web.listen-address=127.0.0.1:{alertmanager_port}"],
            "alertmanager.log",
        ))  # fmt: skip
        # The retraining relay as the README runs it: the rendered CLI.
        processes.append(start(
            [folder / ".venv/bin" / project.package, "retrain-relay", "--port", relay_port],
            "relay.log", cwd=folder, env=relay_env(project, github),
        ))  # fmt: skip
        ready = [(port, "/ready"), (prometheus_port, "/-/ready"),
                 (alertmanager_port, "/-/ready"), (relay_port, "/health")]  # fmt: skip
        for (at, path), process in zip(ready, processes, strict=True):
            wait_until_answers(f"http://127.0.0.1:{at}{path}", process, timeout=120)
        yield {
            "folder": folder,
            "work": work,
            "cli": cli,
            "service": f"http://127.0.0.1:{port}",
            "prometheus": f"http://127.0.0.1:{prometheus_port}",
            "slug": slug,
            "env": project.env,
            "github": github,
        }
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        github.shutdown()
        github.server_close()


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
    # Over the cumulative buckets, not a rate: a rate needs two scrapes inside its window and
    # is empty when the whole burst fell between two of them.
    p99 = prometheus_query(
        prometheus,
        "histogram_quantile(0.99, sum by (le) "
        f'(http_request_duration_seconds_bucket{{job="{slug}", route="/predict"}}))',
    )
    assert p99, "Prometheus computed no p99 from the latency buckets"
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


def test_the_drift_alert_starts_one_training_run_through_alertmanager(stack):
    """Alertmanager routes DataDrift to the relay, which dispatches train.yml once, with the
    alerts and the drift job's verdict; repeats of the notification start nothing more."""
    drift_file = stack["work"] / "logs/monitoring/drift.json"
    if not drift_file.exists() or not json.loads(drift_file.read_text())["dataset_drift"]:
        pytest.fail("the drift job has not flagged drift: this test follows the one before")
    github, relay_log = stack["github"], stack["work"] / "relay.log"
    wait_for(lambda: github.requests, 90, "the relay's dispatch to the GitHub stand-in")
    wait_for(
        lambda: "(a repeated notification)" in relay_log.read_text(),
        60,
        "Alertmanager to repeat the notification (repeat_interval 4s here)",
    )
    assert len(github.requests) == 1, [r["body"]["inputs"]["reason"] for r in github.requests]
    (request,) = github.requests
    shown = request | {"body": request["body"] | {"inputs": dict(request["body"]["inputs"])}}
    shown["body"]["inputs"]["drift_report"] = json.loads(request["body"]["inputs"]["drift_report"])
    print("\nrecorded dispatch request:\n" + json.dumps(shown, indent=2)[:6000])
    assert request["method"] == "POST"
    assert request["path"] == "/repos/acme/churn/actions/workflows/train.yml/dispatches"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == "Bearer token-of-the-test"
    assert headers["accept"] == "application/vnd.github+json"
    body = request["body"]
    assert body["ref"] == "main" and "DataDrift" in body["inputs"]["reason"]
    # The dispatch carries what the rendered train.yml accepts, and nothing else.
    workflow = yaml.safe_load((stack["folder"] / ".github/workflows/train.yml").read_text())
    accepted = (workflow.get("on") or workflow[True])["workflow_dispatch"]["inputs"]
    assert set(body["inputs"]) == set(accepted)
    assert len(json.dumps(body["inputs"])) <= 65_535, "GitHub's limit on a dispatch's inputs"
    report = json.loads(body["inputs"]["drift_report"])
    verdict = json.loads(drift_file.read_text())
    assert "DataDrift" in {alert["labels"]["alertname"] for alert in report["alerts"]}
    assert all(alert["status"] == "firing" for alert in report["alerts"])
    assert report["drift"]["breaches"] == verdict["breaches"] and report["drift"]["dataset_drift"]
    assert report["drift"]["time"] == verdict["time"]
    log = relay_log.read_text()
    assert "training started in acme/churn (main)" in log and "Traceback" not in log
    print("relay log:\n" + log[-2000:])


def test_the_drift_report_renders_in_headless_chromium(stack):
    report = stack["work"] / "logs/monitoring/drift.html"
    if not report.exists():
        pytest.fail("the drift job has not run: this test follows the one before")
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
