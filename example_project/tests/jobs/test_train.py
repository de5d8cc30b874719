"""Training end to end on a small dataset: metrics, MLflow run, registry version, export."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from customer_churn.contract import CONTRACT
from customer_churn.data.validate import validate
from customer_churn.errors import DataError
from customer_churn.jobs.evaluate import evaluate_saved_model
from customer_churn.jobs.train import train
from customer_churn.modeling.evaluate import PRIMARY_METRIC
from customer_churn.registry.export import remove_stale_staging
from customer_churn.registry.receipt import file_sha256
from customer_churn.registry.tracking import ALIAS
from customer_churn.sampling import sample_rows
from tests.conftest import make_settings


def test_training_reports_useful_metrics(trained):
    assert trained.metrics["test_roc_auc"] > 0.7
    assert trained.metrics["cv_roc_auc_mean"] > 0.7
    assert trained.metrics[f"cv_{PRIMARY_METRIC}_std"] >= 0


def test_run_is_tracked_and_registered(trained, settings):
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(trained.run_id)
    assert run.data.params["seed"] == str(settings.seed)
    assert run.data.tags["data_sha256"] == file_sha256(settings.data_path)
    assert run.data.metrics[f"test_{PRIMARY_METRIC}"] == trained.metrics[f"test_{PRIMARY_METRIC}"]
    # What fitting and analysis cost, measured before the run started and logged with it.
    usage = {k: v for k, v in run.data.metrics.items() if k.startswith("system/process_")}
    assert usage["system/process_cpu_seconds"] > 0 and usage["system/process_wall_seconds"] > 0
    assert 0 < usage["system/process_cpu_percentage"] <= 100
    assert usage["system/process_peak_memory_megabytes"] > 50
    artifacts = {a.path for a in client.list_artifacts(trained.run_id, "reports")}
    assert {"reports/metrics.json", "reports/feature_importance.png"} <= artifacts
    version = client.get_model_version_by_alias(settings.registered_model_name, ALIAS)
    assert str(version.version) == trained.model_version and version.run_id == trained.run_id


def test_export_holds_the_serving_artifacts(trained, settings):
    files = {path.name for path in trained.export_dir.iterdir()}
    assert files == {
        "serving.json",
        "pipeline.skops",
        "model.onnx",
        "reference.parquet",
        "model_card.md",  # the card travels with the model, for the dashboard
    }
    manifest = json.loads((trained.export_dir / "serving.json").read_text())
    assert manifest["run_id"] == trained.run_id and manifest["version"] == trained.model_version
    assert manifest["features"] == CONTRACT.feature_names and manifest["git_commit"]
    onnx = manifest["onnx"]
    assert onnx["max_difference"] <= settings.onnx_tolerance
    assert onnx["label_agreement"] >= 0.97
    client = MlflowClient(settings.tracking_uri)
    logged = {a.path for a in client.list_artifacts(trained.run_id, "serving")}
    assert logged == {f"serving/{name}" for name in files}


def test_an_intolerable_onnx_difference_keeps_the_exact_pipeline(trained, settings, tmp_path):
    from customer_churn.registry.artifact import load_pipeline, load_serving_model
    from customer_churn.registry.export import export_serving_model

    pipeline = load_pipeline(trained.export_dir)
    holdout = validate(sample_rows(300, seed=5))
    manifest = export_serving_model(pipeline, holdout, tmp_path / "model", {}, tolerance=-1.0)
    assert manifest["onnx"] is None and "more than the tolerance" in manifest["onnx_skipped"]
    served = load_serving_model(tmp_path / "model")
    assert served.backend == "sklearn" and "more than the tolerance" in served.reason


def test_reports_are_written(trained, settings):
    metrics = json.loads((settings.reports_dir / "metrics.json").read_text())
    assert metrics[f"test_{PRIMARY_METRIC}"] == round(trained.metrics[f"test_{PRIMARY_METRIC}"], 6)
    plots = ("confusion_matrix", "roc_curve", "precision_recall_curve", "feature_importance")
    for plot in plots:
        assert (settings.reports_dir / f"{plot}.png").stat().st_size > 5_000


def test_evaluate_reproduces_the_holdout_metrics(trained, settings, tmp_path):
    rerun = settings.model_copy(update={"reports_dir": tmp_path})
    metrics = evaluate_saved_model(rerun)
    for name, value in metrics.items():
        assert abs(value - trained.metrics[f"test_{name}"]) < 1e-9, name
    assert (tmp_path / "metrics.json").is_file()


@pytest.mark.load
def test_training_killed_part_way_registers_nothing_and_keeps_the_export(
    trained, settings, tmp_path
):
    """Killed (SIGKILL) once its new export is being built, the step before registering: the
    registry gains no version, the previous export stays whole, and what the killed run left
    is hidden beside it until the next training removes it."""
    models = tmp_path / "models"
    shutil.copytree(trained.export_dir, models / "model")
    before = (models / "model" / "serving.json").read_text()
    prefix = "CUSTOMER_CHURN_"
    env = os.environ | {
        f"{prefix}DATA_PATH": str(settings.data_path),
        f"{prefix}MODELS_DIR": str(models),
        f"{prefix}REPORTS_DIR": str(tmp_path / "reports"),
        f"{prefix}TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        f"{prefix}ARTIFACT_LOCATION": str(tmp_path / "mlartifacts"),
        f"{prefix}CV_FOLDS": "3",
    }
    log = tmp_path / "train.log"
    with log.open("w") as stream:
        training = subprocess.Popen(
            [sys.executable, "-m", "customer_churn", "train"],
            env=env, cwd=tmp_path, stdout=stream, stderr=stream,
        )  # fmt: skip
    deadline = time.monotonic() + 600
    while not any((s / "model" / "serving.json").is_file() for s in models.glob(".model-*")):
        assert training.poll() is None, f"training ended before the kill:\n{log.read_text()}"
        assert time.monotonic() < deadline, "the export never started"
        time.sleep(0.05)
    training.kill()
    training.wait(timeout=30)

    registry = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert registry.search_model_versions(f"name='{settings.registered_model_name}'") == []
    assert (models / "model" / "serving.json").read_text() == before, "the old export, whole"
    leftovers = sorted(models.glob(".model-*"))
    assert leftovers and remove_stale_staging(models / "model") == leftovers
    assert sorted(path.name for path in models.iterdir()) == ["model"]


def test_a_missing_data_file_is_the_loaders_error_not_a_traceback(tmp_path):
    settings = make_settings(tmp_path)
    with pytest.raises(DataError, match=r"train\.csv: no such file"):
        train(settings)
    assert not settings.export_dir.exists()
