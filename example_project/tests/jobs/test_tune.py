"""Tuning: seeded, tracked as one parent run of child runs, and handed to the next training."""

import json

import pytest
from mlflow import MlflowClient

from customer_churn.errors import ProjectError
from customer_churn.jobs.tune import estimator_for, read_tuned, tune
from customer_churn.modeling.evaluate import PRIMARY_METRIC
from tests.conftest import make_settings

TRIALS = 3


@pytest.fixture(scope="module")
def tuning(settings, tmp_path_factory):
    """Two searches of the same seed on the session's data, in a tracking store of their own."""
    folder = tmp_path_factory.mktemp("tuning")
    local = make_settings(folder, data_path=settings.data_path)
    shown = []
    first = tune(local, TRIALS, study_name="first", on_trial=shown.append)
    written = json.loads(local.tuned_params_path.read_text())
    second = tune(local, TRIALS, study_name="second")
    return local, first, written, second, shown


def test_the_same_seed_finds_the_same_best_trial(tuning):
    _, first, written, second, _ = tuning
    assert first.trials == second.trials == TRIALS
    assert first.best["params"] == second.best["params"] == written["params"]
    assert first.best["trial"] == second.best["trial"]
    assert first.best["value"] == pytest.approx(second.best["value"])


def test_every_trial_is_a_child_run_of_one_parent_run(tuning):
    local, first, written, _, shown = tuning
    client = MlflowClient(local.tracking_uri)
    parent = client.get_run(first.run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{first.run_id}'"
    )
    assert len(children) == TRIALS
    complete = [run for run in children if run.data.tags["trial_state"] == "complete"]
    assert complete and all(f"cv_{PRIMARY_METRIC}" in run.data.metrics for run in complete)
    assert written["tune_run_id"] == first.run_id
    assert written["trial_run_id"] in {run.info.run_id for run in complete}
    assert parent.data.metrics[f"best_cv_{PRIMARY_METRIC}"] == pytest.approx(written["value"])
    # The command line's progress: one report per trial, the best so far in each.
    assert [progress.number for progress in shown] == list(range(TRIALS))
    assert shown[-1].best_value == pytest.approx(written["value"])


def test_the_next_training_uses_the_best(tuning):
    local, _, _, second, _ = tuning
    estimator, summary = estimator_for(local)  # what `train` fits, and puts in its receipt
    assert summary["tune_run_id"] == second.run_id and "params" not in summary  # the last
    for name, value in second.best["params"].items():
        assert estimator.get_params()[name] == pytest.approx(value)
    assert estimator_for(make_settings(local.models_dir))[1] is None  # no file: PARAMS


def test_a_tuned_file_that_cannot_be_used_is_one_line(settings, tmp_path):
    local = settings.model_copy(update={"tuned_params_path": tmp_path / "tuned_params.json"})
    assert read_tuned(local) is None  # no file: model.py's PARAMS
    for text in ("{not json", '{"value": 1}', '{"params": {"no_such_parameter": 1}}'):
        local.tuned_params_path.write_text(text)
        with pytest.raises(ProjectError, match=r"cannot be used .*run `tune` again") as error:
            read_tuned(local)
        assert "\n" not in str(error.value)
