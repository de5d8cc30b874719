"""The retraining relay against a real HTTP server standing in for the CI's API: a firing alert
starts one training with the drift report; resolved alerts, repeats and alerts in the cooldown
start none; a bad body is a 400, a CI API away or refusing a 502, each one log line."""

import json
import logging
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from customer_churn.cli import app as cli
from customer_churn.errors import ProjectError
from customer_churn.monitoring.dispatch import (
    INPUTS,
    INPUTS_LIMIT,
    VARIABLES,
    target_from,
)
from customer_churn.monitoring.drift import judge, load_reference
from customer_churn.monitoring.retrain import Relay, Target, create_app
from customer_churn.monitoring.window import logged_window
from customer_churn.settings import ENV_PREFIX
from tests.recorder import Recorder, closed_url, free_port

TOKEN = "s3cret-for-the-tests"  # noqa: S105 (not a secret)
FIRING = {
    "status": "firing",
    "labels": {"alertname": "DataDrift", "severity": "warning"},
    "annotations": {"summary": "The inputs drifted away from the training data"},
    "startsAt": "2030-01-02T03:04:05Z",
    "fingerprint": "4a7c2d1e9f0b3a55",  # pragma: allowlist secret (Alertmanager's alert id)
}


def notification(*alerts: dict) -> dict:
    """Alertmanager's webhook body (version 4) for `alerts`."""
    firing = any(alert["status"] == "firing" for alert in alerts)
    return {
        "version": "4",
        "groupKey": '{}/{alertname=~"DataDrift|PredictionDrift"}:{alertname="DataDrift"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "retrain",
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": alerts[0]["annotations"],
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


@pytest.fixture(scope="module")
def verdict(windows, trained, settings, tmp_path_factory):
    """A folder holding the drift job's verdict on the drifted window, as drift.json (judged
    without the HTML report, which the relay does not read: seconds saved)."""
    reference, manifest, _ = load_reference(str(trained.export_dir), settings)
    drifted = windows[0] / "drifted"
    current, _ = logged_window(drifted, settings.drift_window, settings.drift_min_records)
    folder = tmp_path_factory.mktemp("drift")
    result = judge(reference, current, manifest, None, settings)
    (folder / "drift.json").write_text(json.dumps(result))
    return folder


class Clock:
    """The relay's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def relay_for(url: str, folder, ci: str = "github", cooldown: float = 600, clock=time.monotonic):
    target = Target(ci, url, "acme/churn", "main", TOKEN, timeout=5)
    return TestClient(create_app(Relay(target, folder, cooldown, clock)))


def test_a_firing_alert_starts_one_run_with_the_drift_report(verdict):
    with Recorder() as api:
        answer = relay_for(api.url, verdict).post("/alerts", json=notification(FIRING))
    assert answer.status_code == 200 and answer.json()["started"], answer.text
    (request,) = api.requests
    assert request.path == "/repos/acme/churn/actions/workflows/train.yml/dispatches"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    body = request.json()
    assert body["ref"] == "main" and set(body["inputs"]) == set(INPUTS)
    assert body["inputs"]["reason"].startswith("DataDrift: The inputs drifted away")
    report = json.loads(body["inputs"]["drift_report"])
    assert report["alerts"][0]["labels"] == FIRING["labels"]
    assert report["alerts"][0]["startsAt"] == FIRING["startsAt"]
    assert report["drift"] == json.loads((verdict / "drift.json").read_text())
    assert report["drift"]["dataset_drift"] and report["drift"]["breaches"]
    assert len(json.dumps(body["inputs"])) <= INPUTS_LIMIT


def test_resolved_repeated_and_cooling_down_alerts_start_nothing(verdict):
    clock = Clock()
    later = FIRING | {"startsAt": "2030-01-03T00:00:00Z"}  # the same alert, firing anew
    other = FIRING | {"labels": {"alertname": "PredictionDrift"}, "fingerprint": "0b1c"}
    with Recorder() as api:
        relay = relay_for(api.url, verdict, cooldown=600, clock=clock)
        whys = []
        for alerts in ([FIRING], [FIRING], [FIRING | {"status": "resolved"}], [FIRING, other]):
            answer = relay.post("/alerts", json=notification(*alerts)).json()
            whys.append(answer.get("why"))
        clock.now += 601
        assert relay.post("/alerts", json=notification(FIRING, other)).json()["started"] is False
        assert relay.post("/alerts", json=notification(later)).json()["started"]
    assert whys[0] is None and "already started training" in whys[1]
    assert whys[2] == "resolved alerts start nothing" and "within the cooldown" in whys[3]
    assert len(api.requests) == 2, "the first alert and its new firing, nothing else"
    report = json.loads(api.requests[1].json()["inputs"]["drift_report"])
    assert report["alerts"][0]["startsAt"] == later["startsAt"]


@pytest.mark.parametrize(
    "body",
    [
        b"this is not JSON",
        b'{"status": "firing"}',
        b'{"status": "firing", "alerts": []}',
        b'{"status": "firing", "alerts": [{"status": "burning", "labels": {}}]}',
    ],
)
def test_a_body_that_is_not_alertmanagers_is_a_400_and_one_line(body, verdict, caplog):
    with Recorder() as api, caplog.at_level(logging.INFO):
        answer = relay_for(api.url, verdict).post(
            "/alerts", content=body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400
    assert "not an Alertmanager webhook body" in answer.json()["error"]
    assert api.requests == []
    (line,) = [record for record in caplog.records if "retrain" in record.name]
    assert "\n" not in line.getMessage() and line.exc_info is None


def test_a_ci_api_away_or_refusing_is_a_502_then_the_retry_starts_the_run(verdict, caplog):
    with caplog.at_level(logging.INFO):
        away = relay_for(closed_url(), verdict).post("/alerts", json=notification(FIRING))
    assert away.status_code == 502 and "could not be reached" in away.json()["error"]
    refusal = json.dumps({"message": "Bad credentials", "status": "401"}).encode()
    with Recorder(status=401, answer=refusal) as api:
        relay = relay_for(api.url, verdict)
        refused = relay.post("/alerts", json=notification(FIRING))
        api.status, api.answer = 204, b""
        retried = relay.post("/alerts", json=notification(FIRING))  # Alertmanager's retry
    assert refused.status_code == 502
    assert "the GitHub API at http://127.0.0.1" in refused.json()["error"]
    assert "answered HTTP 401: Bad credentials" in refused.json()["error"]
    assert retried.status_code == 200 and retried.json()["started"] and len(api.requests) == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("\n" not in r.getMessage() and not r.exc_info for r in errors)
    assert "answered 502 for Alertmanager to retry" in errors[0].getMessage()


def test_gitlab_gets_a_pipeline_trigger_with_the_variables(verdict):
    with Recorder(status=201, answer=b'{"id": 42}') as api:
        target = Target("gitlab", api.url, "ml/churn", "main", TOKEN, timeout=5)
        client = TestClient(create_app(Relay(target, verdict, 0)))
        assert client.post("/alerts", json=notification(FIRING)).json()["started"]
    (request,) = api.requests
    assert request.path == "/api/v4/projects/ml%2Fchurn/trigger/pipeline"
    fields = dict(urllib.parse.parse_qsl(request.body.decode()))
    assert fields["token"] == TOKEN and fields["ref"] == "main"
    reason, report = (fields[f"variables[{name}]"] for name in VARIABLES)
    assert reason.startswith("DataDrift:") and json.loads(report)["drift"]["dataset_drift"]


def test_a_report_too_large_for_github_is_trimmed_to_fit(tmp_path):
    """Thousands of features: the ones that did not drift go first."""
    features = {
        f"feature_{i}": {"name": f"feature_{i}", "drifted": i % 100 == 0, "score": 0.5}
        for i in range(5000)
    }
    verdict = {"features": features, "dataset_drift": True, "breaches": ["50 features drifted"]}
    (tmp_path / "drift.json").write_text(json.dumps(verdict))
    with Recorder() as api:
        relay_for(api.url, tmp_path).post("/alerts", json=notification(FIRING))
    inputs = api.requests[0].json()["inputs"]
    assert len(json.dumps(inputs)) <= INPUTS_LIMIT
    report = json.loads(inputs["drift_report"])
    assert len(report["drift"]["features"]) == 50 and "did not drift" in report["trimmed"]
    assert report["drift"]["breaches"] == verdict["breaches"]


def test_without_a_verdict_the_report_says_why(tmp_path):
    with Recorder() as api:
        relay_for(api.url, tmp_path).post("/alerts", json=notification(FIRING))
    report = json.loads(api.requests[0].json()["inputs"]["drift_report"])
    assert report["drift"] is None and "the drift job wrote no verdict" in report["drift_missing"]


@pytest.mark.parametrize(("ci", "what"), [("github", "OWNER/REPO"), ("gitlab", "the project's id")])
def test_missing_settings_are_named(settings, ci, what):
    chosen = settings.model_copy(update={"retrain_ci": ci})
    with pytest.raises(ProjectError, match=f"{ENV_PREFIX}RETRAIN_REPOSITORY: {what}"):
        target_from(chosen.model_copy(update={"retrain_repository": "not a repository"}))
    with pytest.raises(ProjectError, match=f"{ENV_PREFIX}RETRAIN_TOKEN"):
        target_from(chosen.model_copy(update={"retrain_repository": "acme/churn"}))
    bad_url = {"retrain_repository": "acme/churn", "retrain_api_url": "ftp://example.com"}
    bad_url["retrain_token"] = SecretStr(TOKEN)
    with pytest.raises(ProjectError, match=f"{ENV_PREFIX}RETRAIN_API_URL must be an http"):
        target_from(chosen.model_copy(update=bad_url))


def test_missing_settings_stop_the_command_before_it_listens(monkeypatch):
    monkeypatch.setenv(f"{ENV_PREFIX}RETRAIN_REPOSITORY", "")
    result = CliRunner().invoke(cli, ["retrain-relay", "--port", "1"])  # no port 1 for us
    assert isinstance(result.exception, ProjectError), result.output
    assert f"{ENV_PREFIX}RETRAIN_REPOSITORY" in str(result.exception)


def test_the_command_relays_over_http(verdict):
    """`retrain-relay` as a user runs it: a real server on loopback."""
    command = [sys.executable, "-m", "customer_churn", "retrain-relay"]
    port = free_port()
    with Recorder() as api:
        env = os.environ | {
            f"{ENV_PREFIX}{name}": value
            for name, value in {
                "RETRAIN_REPOSITORY": "acme/churn",
                "RETRAIN_TOKEN": TOKEN,
                "RETRAIN_API_URL": api.url,
                "MONITORING_DIR": str(verdict),
                "LOG_FORMAT": "text",
            }.items()
        }
        relay = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_until_up(f"http://127.0.0.1:{port}/health", relay)
            answer = _post(f"http://127.0.0.1:{port}/alerts", notification(FIRING))
        finally:
            relay.terminate()
            log = relay.communicate(timeout=30)[1]
    assert answer["started"] is True and answer["reason"].startswith("DataDrift: ")
    assert len(api.requests) == 1
    assert "training started in acme/churn (main) for: DataDrift" in log, log


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            assert process.poll() is None, "the relay exited"
            assert time.monotonic() < deadline, f"{url} did not answer in {timeout} s"
            time.sleep(0.1)


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
