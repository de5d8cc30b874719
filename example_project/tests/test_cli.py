"""The command line: commands work, errors are one clear line and a non-zero exit."""

import shutil
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_churn.cli import app
from customer_churn.contract import CONTRACT
from customer_churn.data.ingest import load_table, write_table
from customer_churn.registry.promote import CHAMPION
from customer_churn.sampling import sample_rows
from customer_churn.settings import ENV_PREFIX
from tests.conftest import example_only, make_settings

runner = CliRunner()


def _project_env(settings, **more: str) -> dict[str, str]:
    """The environment variables that point the command line at the folders and the tracking
    store of `settings`, and set the settings in `more`."""
    names = ("data_path", "models_dir", "reports_dir", "artifact_location", "tracking_uri")
    values = {name: str(getattr(settings, name)) for name in names} | more
    return {f"{ENV_PREFIX}{name.upper()}": value for name, value in values.items()}


@pytest.fixture
def env(settings, monkeypatch):
    """Point the command line at the test folder through environment variables."""
    for name, value in _project_env(settings, model_uri=settings.model_uri).items():
        monkeypatch.setenv(name, value)


@example_only
def test_data_then_validate(tmp_path, env):
    target = tmp_path / "generated.parquet"
    result = runner.invoke(app, ["data", "--rows", "25", "--seed", "3", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert len(load_table(target)) == 25
    result = runner.invoke(app, ["validate", str(target)])
    assert result.exit_code == 0 and "25 rows follow the feature contract" in result.output


def test_contract_init_writes_a_contract_and_keeps_an_edited_one(tmp_path):
    rows = {"age": [30, 41, None, 25] * 5, "plan": ["a", "b", "c", "a"] * 5, "y": [0, 1] * 10}
    source = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    output = tmp_path / "contract.py"
    command = ["contract", "init", str(source), "--target", "y", "--output", str(output)]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "numeric (1): age" in result.output and "classes 0, 1" in result.output
    assert "TODO: describe" in result.output and "make run" in result.output
    output.write_text(output.read_text().replace("TODO: describe age", "Age in years"))
    result = runner.invoke(app, command)
    assert result.exit_code != 0 and "Age in years" in output.read_text()
    assert runner.invoke(app, [*command, "--force"]).exit_code == 0
    assert "Age in years" not in output.read_text()


def test_contract_init_refusals_are_one_line_each(tmp_path):
    source = tmp_path / "rows.csv"
    source.write_text("when,same,y\n2024-01-02,1,0\n2024-02-03,1,1\n2024-03-04,1,0\n")
    result = _run("contract", "init", str(source), "--target", "y", "--output", str(source))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'when' holds dates" in result.stderr and "'same' holds one value" in result.stderr
    assert source.read_text().startswith("when,"), "nothing is written"


def test_predict_command(trained, sample, tmp_path, env):
    source = tmp_path / "in.csv"
    sample.to_csv(source, index=False)
    result = runner.invoke(app, ["predict", str(source), str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert f"wrote {len(sample)} predictions" in result.output


def _run(*args, cwd=None, **env):
    """Run the real entry point in a subprocess, as a user would."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "customer_churn", *args],
        capture_output=True,
        text=True,
        env=os.environ | env,
        cwd=cwd,
        timeout=300,
    )


def test_train_then_promote_in_one_command(tmp_path, monkeypatch):
    """`make run`'s first line: train, then the gate, in one process."""
    from mlflow import MlflowClient

    settings = make_settings(tmp_path, cv_folds=2)
    write_table(sample_rows(300, seed=3), settings.data_path)
    # This test is about the command, not the gate's limits (tests/registry/test_promote.py).
    free = {"promotion_thresholds": "{}", "max_segment_gap": "none", "max_p99_latency_ms": "none"}
    for name, value in _project_env(settings, cv_folds=str(settings.cv_folds), **free).items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["train", "--promote"])
    assert result.exit_code == 0, result.output
    assert "registered" in result.output and "version 1 promoted to champion" in result.output
    champion = MlflowClient(settings.tracking_uri).get_model_version_by_alias(
        settings.registered_model_name, CHAMPION
    )
    assert str(champion.version) == "1"


def test_an_unusable_tracking_store_is_one_clear_error(tmp_path):
    """A fresh process sets the store up in a second one (registry/store.py): its failure is
    still one line, and nothing is exported."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder would be")
    settings = make_settings(tmp_path, tracking_uri=f"sqlite:///{blocker / 'mlflow.db'}")
    write_table(sample_rows(200, seed=3), settings.data_path)
    result = _run("train", cwd=tmp_path, **_project_env(settings, cv_folds=str(settings.cv_folds)))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert f"cannot use the tracking store at {settings.tracking_uri}" in errors[0]
    assert not settings.export_dir.exists()


def test_bad_data_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{CONTRACT.feature_names[0]}\n1\n")
    result = _run("validate", str(bad))
    assert result.returncode == 2
    assert f"missing column '{CONTRACT.feature_names[1]}'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_names_the_variable():
    result = _run("validate", CUSTOMER_CHURN_CV_FOLDS="1")
    assert result.returncode == 2
    assert f"{ENV_PREFIX}CV_FOLDS" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["serve", "evaluate", "predict"])
def test_missing_model_is_one_clear_error(tmp_path, command):
    extra = [str(tmp_path / "in.csv"), str(tmp_path / "out.csv")] if command == "predict" else []
    result = _run(command, *extra, "--model-uri", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert "no model at" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("damaged", "message"),
    [("serving.json", "serving.json cannot be read"), ("pipeline.skops", "cannot be loaded")],
)
def test_a_corrupted_model_file_is_one_clear_error(trained, tmp_path, damaged, message):
    """Refused at start, before a port is bound: an orchestrator shows the reason, and a
    restart loop shows the same line each time."""
    folder = shutil.copytree(trained.export_dir, tmp_path / "model")
    (folder / damaged).write_bytes(b"\x00 not what it was \xff" * 10)
    backend = {"CUSTOMER_CHURN_SERVING_BACKEND": "sklearn"}
    result = _run("serve", "--model-uri", str(folder), **backend)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_corrupted_onnx_graph_falls_back_to_the_exact_pipeline(trained, tmp_path):
    from customer_churn.registry.artifact import ONNX_FILE, load_serving_model

    folder = shutil.copytree(trained.export_dir, tmp_path / "model")
    (folder / ONNX_FILE).write_bytes(b"\x00 not a graph \xff" * 10)
    served = load_serving_model(folder)
    assert served.backend == "sklearn" and f"{ONNX_FILE} cannot be loaded" in served.reason
