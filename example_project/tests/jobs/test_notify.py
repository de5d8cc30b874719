"""Notifications: a failed `train` and a version the gate refuses are posted to the webhook as
Slack-compatible JSON; a webhook that is away is one warning, and the command's own error and
exit status stay as they were."""

import re
import time

import pytest
from typer.testing import CliRunner

from customer_churn.cli import app
from customer_churn.contract import CONTRACT
from customer_churn.errors import DataError
from customer_churn.jobs.notify import PROJECT, message, run_started_since
from customer_churn.registry.store import configure_tracking
from customer_churn.settings import ENV_PREFIX
from tests.recorder import Recorder, closed_url

runner = CliRunner()


@pytest.fixture
def env(settings, monkeypatch, tmp_path):
    """The command line pointed at the session's store and data, with a limit no model meets
    for the gate."""
    values = {
        "data_path": str(settings.data_path),
        "models_dir": str(tmp_path / "models"),
        "reports_dir": str(tmp_path / "reports"),
        "artifact_location": str(settings.artifact_location),
        "tracking_uri": settings.tracking_uri,
        "promotion_thresholds": "{}",
        "max_p99_latency_ms": "1e-9",
    }
    for name, value in values.items():
        monkeypatch.setenv(f"{ENV_PREFIX}{name.upper()}", value)
    monkeypatch.delenv("GITHUB_RUN_ID", raising=False)
    monkeypatch.delenv("CI_JOB_URL", raising=False)
    return monkeypatch


def train_on_bad_data(env, tmp_path):
    """`train` on a file that breaks the contract: it fails at once."""
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{CONTRACT.feature_names[0]}\n1\n")
    env.setenv(f"{ENV_PREFIX}DATA_PATH", str(bad))
    return runner.invoke(app, ["train"])


def test_a_failed_training_posts_its_error(env, trained, tmp_path):
    with Recorder(status=200, answer=b"ok") as hook:
        env.setenv(f"{ENV_PREFIX}NOTIFY_WEBHOOK_URL", f"{hook.url}/services/T0/B0/secret")
        result = train_on_bad_data(env, tmp_path)
    assert isinstance(result.exception, DataError), result.output
    (request,) = hook.requests
    assert request.path == "/services/T0/B0/secret"
    assert request.headers["content-type"] == "application/json"
    text = request.json()["text"]
    assert text.startswith(f"{PROJECT}: `train` failed: ")
    assert f"missing column '{CONTRACT.feature_names[1]}'" in text
    assert "warning" not in result.output


def test_a_refused_promotion_posts_the_reasons_and_the_run(env, trained, settings):
    from mlflow import MlflowClient

    with Recorder(status=200, answer=b"ok") as hook:
        env.setenv(f"{ENV_PREFIX}NOTIFY_WEBHOOK_URL", hook.url)
        result = runner.invoke(app, ["promote"])
    assert result.exit_code == 1 and "refused" in result.output, result.output
    (request,) = hook.requests
    text = request.json()["text"]
    assert text.startswith(f"{PROJECT}: `promote` kept the champion: the gate refused version ")
    assert "above the limit 1e-09 (max_p99_latency_ms)" in text
    version = re.search(r"refused version (\d+)", text).group(1)
    client = MlflowClient(settings.tracking_uri)
    run_id = client.get_model_version(settings.registered_model_name, version).run_id
    assert text.endswith(f"(MLflow run {run_id})")


def test_a_webhook_that_is_away_is_one_warning_and_changes_nothing(env, trained, tmp_path):
    env.setenv(f"{ENV_PREFIX}NOTIFY_WEBHOOK_URL", f"{closed_url()}/hook")
    refused = runner.invoke(app, ["promote"])
    failed = train_on_bad_data(env, tmp_path)
    assert isinstance(failed.exception, DataError) and refused.exit_code == 1
    for result in (failed, refused):
        warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1, result.output
        assert "not delivered: 127.0.0.1 could not be reached" in warnings[0]
        assert "/hook" not in warnings[0], "the webhook's URL is a secret"
    assert "refused" in refused.output


def test_an_empty_webhook_setting_is_off(env, trained, tmp_path):
    env.setenv(f"{ENV_PREFIX}NOTIFY_WEBHOOK_URL", "")  # an unset CI secret reads as empty
    result = train_on_bad_data(env, tmp_path)
    assert isinstance(result.exception, DataError) and "warning" not in result.output


def test_the_message_names_the_ci_job(monkeypatch):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    said = message("train", "failed: boom", "abc123")
    assert said == (
        f"{PROJECT}: `train` failed: boom "
        "(MLflow run abc123; CI job https://github.com/acme/churn/actions/runs/42)"
    )


def test_the_run_of_a_training_that_failed_half_way_is_found(settings):
    import mlflow

    configure_tracking(settings)
    experiment = mlflow.create_experiment("a-training-that-failed")
    started = time.time()
    with pytest.raises(RuntimeError), mlflow.start_run(experiment_id=experiment) as run:
        raise RuntimeError("failed half-way")
    assert run_started_since(started) == run.info.run_id
    assert run_started_since(time.time() + 60) is None, "a run from before the command"
