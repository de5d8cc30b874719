"""The promotion gate, rollback and the champion's history, the run receipt, reproduction, the
model card and a tracking server away."""

import shutil
import time

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from pydantic import SecretStr

from customer_churn.contract import CONTRACT
from customer_churn.data.ingest import write_table
from customer_churn.errors import ProjectError, TrackingError
from customer_churn.jobs.reproduce import reproduce
from customer_churn.jobs.train import train
from customer_churn.modeling.evaluate import LOWER_IS_BETTER, PRIMARY_METRIC
from customer_churn.registry.cache import cached_export
from customer_churn.registry.champions import champion_history, rollback
from customer_churn.registry.promote import CHAMPION, judge, promote
from customer_churn.registry.tracking import register
from customer_churn.sampling import sample_rows
from customer_churn.service.app import create_app
from tests.conftest import make_settings

BETTER = -1.0 if PRIMARY_METRIC in LOWER_IS_BETTER else 1.0


def test_the_gate_promotes_the_first_model_and_refuses_a_worse_one(tmp_path):
    # A 100-row holdout is too small to judge segments: no gap limit here.
    settings = make_settings(tmp_path, cv_folds=2, promotion_thresholds={}, max_segment_gap=None)
    champion_uri = f"models:/{settings.registered_model_name}@{CHAMPION}"
    settings = settings.model_copy(update={"model_uri": champion_uri})  # what `serve` loads
    write_table(sample_rows(500, seed=3), settings.data_path)
    assert train(settings).model_version == "1"
    first = promote(settings)
    assert first.promoted and first.challenger == "1" and first.champion is None
    # The export on disk is the champion's: it is where a pull would put it, for `serve`.
    assert cached_export(champion_uri, settings).name == "version-1"

    # The same rows with the target shuffled: a model that learned nothing.
    shuffled = sample_rows(500, seed=3)
    target = CONTRACT.target.name
    shuffled[target] = shuffled[target].sample(frac=1, random_state=0).to_numpy()
    noisy = settings.model_copy(update={"data_path": tmp_path / "shuffled.csv"})
    write_table(shuffled, noisy.data_path)
    assert train(noisy).model_version == "2"

    refused = promote(settings)  # judged on the holdout of the real data
    assert not refused.promoted
    assert f"does not beat the champion's {refused.champion_metrics[PRIMARY_METRIC]:.4f}" in (
        refused.summary
    )
    client = MlflowClient(settings.tracking_uri)
    name = settings.registered_model_name
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "1"
    assert cached_export(champion_uri, settings).name == "version-1"  # not the refused one
    for number in ("1", "2"):
        tags = client.get_model_version(name, number).tags
        assert tags["promotion.decision"] == "refused"
        assert tags["promotion.challenger"] == "2" and tags["promotion.champion"] == "1"
        assert "does not beat the champion" in tags["promotion.reason"]
        assert f"promotion.challenger.{PRIMARY_METRIC}" in tags


def test_the_newest_version_is_judged_on_the_figures_its_run_recorded(tmp_path):
    """Trained and scored on this very holdout, the challenger is not downloaded to be scored
    again: the gate works with the artifact store gone, on the run's holdout figures."""
    settings = make_settings(tmp_path, cv_folds=2, promotion_thresholds={}, max_segment_gap=None)
    write_table(sample_rows(500, seed=3), settings.data_path)
    trained = train(settings)
    shutil.rmtree(settings.artifact_location)
    decision = promote(settings)
    assert decision.promoted, decision.reasons
    recorded = {
        name.removeprefix("test_"): value
        for name, value in trained.metrics.items()
        if name.startswith("test_")
    }
    assert recorded and {name: decision.challenger_metrics[name] for name in recorded} == recorded
    # A version trained on other rows is scored again: see the test above, whose second
    # version, trained on shuffled labels, is judged on the holdout of the real data.


def test_rollback_moves_the_champion_back_and_history_keeps_every_move(tmp_path, monkeypatch):
    # Any challenger wins here (a negative margin): this test is about moving the alias.
    settings = make_settings(
        tmp_path,
        cv_folds=2,
        promotion_thresholds={},
        max_segment_gap=None,
        promotion_margin=-1.0,
    )
    write_table(sample_rows(300, seed=3), settings.data_path)
    first = train(settings)
    assert promote(settings).promoted
    # The same model registered again is version 2, promoted over version 1.
    model_uri = f"runs:/{first.run_id}/model"
    assert register(model_uri, settings) == "2" and promote(settings).promoted
    client = MlflowClient(settings.tracking_uri)
    name = settings.registered_model_name

    move = rollback(settings, reason="latency doubled in production")
    assert (move.version, move.previous, move.action) == ("1", "2", "rollback")
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "1"
    back, away = client.get_model_version(name, "1").tags, client.get_model_version(name, "2").tags
    assert back["rollback.from"] == "2" and back["rollback.at"] == move.at
    assert back["rollback.reason"] == "latency doubled in production"
    assert away["rolled_back.to"] == "1" and away["rolled_back.at"] == move.at

    # Version 1 replaced no champion: nothing is before it, unless a version is named.
    with pytest.raises(ProjectError, match=r"no champion before version 1 .* --to VERSION"):
        rollback(settings)
    with pytest.raises(ProjectError, match="is the champion already"):
        rollback(settings, to="1")
    with pytest.raises(ProjectError, match="has no version '7'"):
        rollback(settings, to="7")
    assert rollback(settings, to="2").version == "2"

    history = [(m.number, m.action, m.version, m.previous) for m in champion_history(settings)]
    assert history == [
        (1, "promote", "1", None),
        (2, "promote", "2", "1"),
        (3, "rollback", "1", "2"),
        (4, "rollback", "2", "1"),
    ]
    assert champion_history(settings)[2].reason == "latency doubled in production"

    # A running service serves the older version after a reload of the alias.
    rollback(settings, to="1")
    monkeypatch.setenv("CUSTOMER_CHURN_TRACKING_URI", settings.tracking_uri)
    secured = settings.model_copy(
        update={
            "api_key": SecretStr("k"),
            "request_timeout": 600.0,
            "model_uri": str(first.export_dir),
        }
    )
    key = {"x-api-key": "k"}
    with TestClient(create_app(secured)) as service:
        champion = f"models:/{name}@{CHAMPION}"
        reloaded = service.post("/admin/reload", json={"model_uri": champion}, headers=key)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["version"] == "1"
        assert service.get("/model", headers=key).json()["version"] == "1"


def test_thresholds_and_margin_are_both_required(tmp_path):
    settings = make_settings(
        tmp_path,
        promotion_thresholds={PRIMARY_METRIC: 0.5},
        promotion_margin=0.01,
        max_segment_gap=None,
        max_p99_latency_ms=None,
        max_artifact_mb=None,
    )
    good, bad = 0.5 + BETTER * 0.2, 0.5 - BETTER * 0.2

    def figures(value: float) -> dict[str, float]:  # with a baseline `good` beats by far
        return {PRIMARY_METRIC: value, f"baseline_{PRIMARY_METRIC}": 0.5}

    bound = "maximum" if PRIMARY_METRIC in LOWER_IS_BETTER else "minimum"
    assert judge(settings, figures(good), None) == []
    assert f"is below the {bound}" in judge(settings, figures(bad), None)[0] or (
        f"is above the {bound}" in judge(settings, figures(bad), None)[0]
    )
    small_gain = figures(good + BETTER * 0.005)
    assert "by the margin 0.01" in judge(settings, small_gain, figures(good))[0]
    assert judge(settings, figures(good + BETTER * 0.02), figures(good)) == []
    unknown = settings.model_copy(update={"promotion_thresholds": {"nope": 1}})
    with pytest.raises(ProjectError, match="unknown metric 'nope'"):
        judge(unknown, figures(good), None)


def test_a_run_reproduces_from_its_receipt(trained, settings):
    assert trained.receipt["data_sha256"] and trained.receipt["seed"] == settings.seed
    assert set(trained.receipt) >= {"git_commit", "git_dirty", "lock_sha256", "packages", "python"}
    result = reproduce(trained.run_id, settings)
    assert result.matches, result.rows
    assert {row[0] for row in result.rows} == set(trained.metrics)


def test_reproduction_refuses_changed_data(trained, settings):
    original = settings.data_path.read_bytes()
    try:
        settings.data_path.write_bytes(original + b"\n")
        with pytest.raises(ProjectError, match="SHA-256 differs"):
            reproduce(trained.run_id, settings)
    finally:
        settings.data_path.write_bytes(original)


def test_the_model_card_is_written_and_logged(trained, settings):
    card = (settings.reports_dir / "model_card.md").read_text()
    for heading in ("## Intended use", "## Limitations", "## Data", "## Metrics", "## Receipt"):
        assert heading in card
    assert f"| test_{PRIMARY_METRIC} | {trained.metrics[f'test_{PRIMARY_METRIC}']:.4f} |" in card
    assert trained.receipt["data_sha256"] in card
    client = MlflowClient(settings.tracking_uri)
    logged = {a.path for a in client.list_artifacts(trained.run_id, "reports")}
    assert "reports/model_card.md" in logged


def test_training_fails_fast_when_the_tracking_server_is_away(tmp_path):
    settings = make_settings(tmp_path, tracking_uri="http://127.0.0.1:9")
    write_table(sample_rows(100, seed=1), settings.data_path)
    started = time.monotonic()
    with pytest.raises(
        TrackingError, match=r"cannot reach the tracking server at http://127\.0\.0\.1:9"
    ):
        train(settings)
    assert time.monotonic() - started < 15
    assert not settings.export_dir.exists() and not settings.reports_dir.exists()
