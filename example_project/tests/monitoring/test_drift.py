"""The drift job: a clean window passes, a drifted one is flagged, reported and exposed."""

import json
import re

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from customer_churn.cli import app as cli
from customer_churn.contract import CONTRACT
from customer_churn.errors import DataError
from customer_churn.monitoring.drift import run
from customer_churn.registry.artifact import REFERENCE_FILE
from customer_churn.service.app import create_app


def test_the_export_carries_the_reference(trained):
    reference = pd.read_parquet(trained.export_dir / REFERENCE_FILE)
    assert list(reference.columns[: len(CONTRACT.feature_names)]) == CONTRACT.feature_names
    assert "prediction" in reference.columns
    assert trained.manifest["reference"]["rows"] == len(reference) > 0


def test_a_clean_window_is_healthy_and_reported(windows, settings, trained, tmp_path):
    folder, _ = windows
    result = run(settings, log_dir=folder / "clean", output_dir=tmp_path)
    assert result["healthy"] and not result["breaches"] and not result["dataset_drift"]
    assert result["window"] == 600 and result["model"]["version"] == trained.model_version
    saved = json.loads((tmp_path / "drift.json").read_text())
    assert saved["share_drifted"] == result["share_drifted"]
    page = (tmp_path / "drift.html").read_text()
    assert "No drift beyond the thresholds" in page
    assert page.count("data:image/png;base64,") == len(CONTRACT.features) + 1


def test_a_drifted_window_breaches_and_names_the_features(windows, settings, tmp_path):
    folder, _ = windows
    result = run(settings, log_dir=folder / "drifted", output_dir=tmp_path)
    assert result["dataset_drift"] and result["share_drifted"] == 1.0
    assert any("features drifted" in breach for breach in result["breaches"])
    assert "Thresholds breached" in (tmp_path / "drift.html").read_text()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "holds 0 records"),
        ("bad-labels", "lacks the column(s) ['request_id']"),
    ],
)
def test_bad_input_is_one_clear_error(windows, settings, tmp_path, setup, message):
    folder, _ = windows
    options = {"log_dir": tmp_path / "nothing"}
    if setup == "bad-labels":
        (tmp_path / "labels.csv").write_text(f"id,{CONTRACT.target.name}\n1,0\n")
        options = {"log_dir": folder / "clean", "labels": tmp_path / "labels.csv"}
    with pytest.raises(DataError, match=re.escape(message)):
        run(settings, output_dir=tmp_path / "out", **options)
    assert not (tmp_path / "out" / "drift.json").exists()


def test_the_command_exits_1_on_drift_and_0_without(windows, settings, monkeypatch, tmp_path):
    folder, _ = windows
    monkeypatch.setenv("CUSTOMER_CHURN_MODEL_URI", settings.model_uri)
    runner = CliRunner()
    clean = runner.invoke(
        cli, ["monitor", "--log-dir", str(folder / "clean"), "--output", str(tmp_path)]
    )
    assert clean.exit_code == 0, clean.output
    shifted = runner.invoke(
        cli, ["monitor", "--log-dir", str(folder / "drifted"), "--output", str(tmp_path)]
    )
    assert shifted.exit_code == 1 and "breach:" in shifted.output


def test_the_service_exposes_the_latest_drift_result(windows, settings, serving_model):
    folder, _ = windows
    run(settings, log_dir=folder / "drifted")  # into settings.monitoring_dir, which the app reads
    with TestClient(create_app(settings, serving_model)) as client:
        text = client.get("/metrics").text
    assert "drift_share_of_features 1.0" in text and "drift_dataset_detected 1.0" in text
    feature = CONTRACT.feature_names[0]
    assert 'drift_feature_detected{feature="' + feature + '"} 1.0' in text
