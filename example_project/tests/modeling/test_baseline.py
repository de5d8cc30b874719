"""The baseline every model must beat: recorded with each run on the model's folds and
holdout, shown on the model card, and enforced by the promotion gate."""

import pytest
from mlflow import MlflowClient

from customer_churn.contract import CONTRACT
from customer_churn.data.ingest import write_table
from customer_churn.jobs.train import train
from customer_churn.modeling.baseline import PREFIX, SKILL, holdout_figures, skill
from customer_churn.modeling.evaluate import LOWER_IS_BETTER, PRIMARY_METRIC
from customer_churn.modeling.fit import labelled_split
from customer_churn.registry.promote import promote
from customer_churn.sampling import sample_rows
from tests.conftest import make_settings

PRIMARY = PRIMARY_METRIC


def test_every_run_records_the_baseline_on_the_same_holdout(trained, settings):
    metrics = trained.metrics
    assert f"{PREFIX}cv_{PRIMARY}_mean" in metrics
    # Scored again from the split alone (as the gate does), the baseline's figures are the run's.
    again = holdout_figures(*labelled_split(settings))
    assert f"{PREFIX}{PRIMARY}" in again
    for name, value in again.items():
        assert f"test_{name.removeprefix(PREFIX)}" in metrics, name
        assert metrics[f"{PREFIX}test_{name.removeprefix(PREFIX)}"] == pytest.approx(value)
    model, baseline = metrics[f"test_{PRIMARY}"], metrics[f"{PREFIX}test_{PRIMARY}"]
    assert metrics[SKILL] == pytest.approx(skill(PRIMARY, model, baseline))
    assert metrics[SKILL] > 0.1, "the sampled rows have a target the model can learn"
    if CONTRACT.target.kind == "classification":  # class shares rank every row the same
        assert baseline == pytest.approx(0.5)
    else:  # the training rows' mean: never better on the holdout than the holdout's own mean
        assert metrics[f"{PREFIX}test_r2"] <= 1e-12

    card = (settings.reports_dir / "model_card.md").read_text()
    assert "| metric | model | baseline | lift |" in card
    assert f"| test_{PRIMARY} | {model:.4f} | {baseline:.4f} |" in card
    assert f"makes {metrics[SKILL]:.1%} of the possible improvement" in card


def test_skill_is_the_share_of_the_possible_improvement():
    higher, lower = "accuracy", sorted(LOWER_IS_BETTER)[0]
    assert higher not in LOWER_IS_BETTER
    assert skill(higher, 1.0, 0.6) == pytest.approx(1.0)
    assert skill(higher, 0.8, 0.6) == pytest.approx(0.5)
    assert skill(higher, 0.6, 0.6) == 0.0
    assert skill(higher, 0.5, 0.6) < 0
    assert skill(lower, 0.0, 2.0) == pytest.approx(1.0)
    assert skill(lower, 1.0, 2.0) == pytest.approx(0.5)
    assert skill(lower, 3.0, 2.0) == pytest.approx(-0.5)
    assert skill(higher, 1.0, 1.0) == skill(lower, 0.0, 0.0) == 0.0  # nothing left to gain


def test_the_gate_refuses_a_model_short_of_the_skill_over_the_baseline(tmp_path):
    settings = make_settings(
        tmp_path,
        cv_folds=2,
        promotion_thresholds={},
        max_segment_gap=None,
        min_skill_over_baseline=1.0,  # only a perfect model would pass
    )
    write_table(sample_rows(300, seed=5), settings.data_path)
    trained = train(settings)
    refused = promote(settings)
    assert not refused.promoted
    (reason,) = refused.reasons
    baseline = trained.metrics[f"{PREFIX}test_{PRIMARY}"]
    assert f"against the baseline's {baseline:.4f} is a skill of" in reason, reason
    assert reason.endswith("below the minimum 1.0 (min_skill_over_baseline)")
    assert refused.challenger_metrics[f"{PREFIX}{PRIMARY}"] == pytest.approx(baseline)
    name = settings.registered_model_name
    tags = MlflowClient(settings.tracking_uri).get_model_version(name, "1").tags
    assert tags["promotion.decision"] == "refused"
    assert "min_skill_over_baseline" in tags["promotion.reason"]
    assert f"promotion.challenger.{PREFIX}{PRIMARY}" in tags
    # The same version, asked for the default skill, passes.
    assert promote(settings.model_copy(update={"min_skill_over_baseline": 0.1})).promoted
