"""Tuning: seeded, tracked as one parent run of child runs, and handed to the next training."""

import json

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from customer_churn.cli import app
from customer_churn.errors import ProjectError
from customer_churn.jobs.tune import estimator_for, read_tuned, tune
from customer_churn.model import PARAMS
from customer_churn.modeling.evaluate import PRIMARY_METRIC
from customer_churn.modeling.model_card import tuning_cell
from tests.conftest import make_settings
from tests.test_cli import _project_env

TRIALS = 3


def tune_command(local, *args: str, **more: str):
    """`tune ARGS` through the command line, its settings (`local`, and `more` by name) from
    the environment as a user's shell gives them."""
    more |= {"cv_folds": str(local.cv_folds), "tuned_params_path": str(local.tuned_params_path)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _project_env(local, **more).items():
            patch.setenv(name, value)
        patch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")  # samples in seconds
        shown = CliRunner().invoke(app, ["tune", *args])
    assert shown.exit_code == 0, shown.output
    return shown


@pytest.fixture(scope="module")
def tuning(settings, tmp_path_factory):
    """Two searches of the same seed on the session's data, in a tracking store of their own:
    the first with the command line, the second with the job's function."""
    folder = tmp_path_factory.mktemp("tuning")
    local = make_settings(folder, data_path=settings.data_path)
    shown = tune_command(local, "--trials", str(TRIALS), "--study", "first")
    written = json.loads(local.tuned_params_path.read_text())
    second = tune(local, TRIALS, study_name="second")
    return local, written, second, shown.output


def test_the_same_seed_finds_the_same_best_trial(tuning):
    _, written, second, _ = tuning
    assert written["trials"] == second.trials == TRIALS
    assert written["params"] == second.best["params"]
    assert written["trial"] == second.best["trial"]
    assert written["value"] == pytest.approx(second.best["value"])


def test_every_trial_is_a_child_run_of_one_parent_run(tuning):
    local, written, _, output = tuning
    client = MlflowClient(local.tracking_uri)
    parent = client.get_run(written["tune_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == TRIALS
    first = next(run for run in children if run.info.run_name == "trial 0")
    for name, value in first.data.params.items():  # model.py's PARAMS, the defaults to beat
        assert str(PARAMS[name]) == value
    complete = [run for run in children if run.data.tags["trial_state"] == "complete"]
    assert complete and all(f"cv_{PRIMARY_METRIC}" in run.data.metrics for run in complete)
    assert written["trial_run_id"] in {run.info.run_id for run in complete}
    assert parent.data.metrics[f"best_cv_{PRIMARY_METRIC}"] == pytest.approx(written["value"])
    # What the search cost: MLflow's samples of the machine while it ran, and the process's
    # own figures for the whole search.
    sampled = client.get_metric_history(parent.info.run_id, "system/cpu_utilization_percentage")
    assert sampled and all(0 <= point.value <= 100 for point in sampled)
    assert parent.data.metrics["system/process_cpu_seconds"] > 0
    assert parent.data.metrics["system/process_peak_memory_megabytes"] > 50
    # The command's progress: a line per trial with the best so far, then the best written.
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("trial ")]
    assert [line.split(":")[0] for line in lines] == [f"trial {n}" for n in range(TRIALS)]
    assert all("s left" in line for line in lines)
    assert f"best {PRIMARY_METRIC} {written['value']:.4f} (trial {written['trial']})" in output


def test_the_next_training_uses_the_best(tuning, trained, settings):
    local, _, second, _ = tuning
    estimator, summary = estimator_for(local)  # what `train` fits, and puts in its receipt
    assert summary["tune_run_id"] == second.run_id and "params" not in summary  # the last
    for name, value in second.best["params"].items():
        assert estimator.get_params()[name] == pytest.approx(value)
    assert estimator_for(make_settings(local.models_dir))[1] is None  # no file: PARAMS
    # The model card says which: the session's model has PARAMS, a tuned one the trial.
    card = (settings.reports_dir / "model_card.md").read_text()
    assert "| hyperparameters | model.py's `PARAMS` |" in card
    cell = tuning_cell(summary)
    assert f"trial {second.best['trial']} of {TRIALS} in study `second`" in cell
    assert second.run_id in cell


def test_a_tuned_file_that_cannot_be_used_is_one_line(settings, tmp_path):
    local = settings.model_copy(update={"tuned_params_path": tmp_path / "tuned_params.json"})
    assert read_tuned(local) is None  # no file: model.py's PARAMS
    for text in ("{not json", '{"value": 1}', '{"params": {"no_such_parameter": 1}}'):
        local.tuned_params_path.write_text(text)
        with pytest.raises(ProjectError, match=r"cannot be used .*run `tune` again") as error:
            read_tuned(local)
        assert "\n" not in str(error.value)


def test_a_complete_shared_study_hands_over_its_best_without_a_trial(tuning, tmp_path):
    """Workers share a study through its storage (here from the environment, as the
    Kubernetes workers get it); `tune` on a study that already holds the trials asked for runs
    none and writes the best it holds: how the best is fetched after the workers."""
    local, _, _, _ = tuning
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    searched = tune(local, 2, storage=storage, study_name="shared")
    local.tuned_params_path.unlink()
    shown = tune_command(local, "--trials", "2", "--study", "shared", tune_storage=storage)
    assert "  trial " not in shown.output, shown.output
    fetched = json.loads(local.tuned_params_path.read_text())
    assert fetched["trials"] == searched.trials == 2
    for key in ("params", "value", "trial", "trial_run_id"):
        assert fetched[key] == searched.best[key]
    client = MlflowClient(local.tracking_uri)
    parent = client.get_run(fetched["tune_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert children == []
