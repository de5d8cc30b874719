"""The baseline a model must beat: one that ignores the features and answers the training rows'
class shares (classification) or their mean (regression), through the same preprocessing,
scored on the same folds and holdout as the model.

The gate judges a model by its skill over the baseline on the primary metric: the share of
the possible improvement over the baseline it makes (1 a perfect model, 0 no better than the
baseline, below 0 worse), so that one setting (`min_skill_over_baseline`) means the same for
every metric: ROC AUC and F1 top out at 1, error metrics at 0.
"""

from __future__ import annotations

import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.model_selection import cross_validate

from ..contract import CONTRACT
from ..features import build_pipeline, features_of
from . import evaluate

PREFIX = "baseline_"  # its figures: baseline_test_<metric>, baseline_cv_<metric>_mean
SKILL = "skill_over_baseline"  # the model's, on the primary metric of the holdout


def build_baseline():
    """The features-blind pipeline (DummyClassifier's class shares, or DummyRegressor's mean)."""
    if CONTRACT.target.kind == "classification":
        return build_pipeline(DummyClassifier(strategy="prior"))
    return build_pipeline(DummyRegressor(strategy="mean"))


def holdout_figures(train_frame: pd.DataFrame, test_frame: pd.DataFrame) -> dict[str, float]:
    """The baseline fitted on the training rows, scored on the holdout: baseline_<metric>."""
    pipeline = build_baseline()
    pipeline.fit(features_of(train_frame), train_frame[CONTRACT.target.name])
    return {f"{PREFIX}{k}": v for k, v in evaluate.compute_metrics(pipeline, test_frame).items()}


def training_figures(
    train_frame: pd.DataFrame, test_frame: pd.DataFrame, cv_folds: int
) -> dict[str, float]:
    """What a training run records of the baseline: its cross-validated means on the model's
    folds (baseline_cv_<metric>_mean) and its holdout figures (baseline_test_<metric>)."""
    x_train, y_train = features_of(train_frame), train_frame[CONTRACT.target.name]
    scores = cross_validate(
        build_baseline(), x_train, y_train, cv=cv_folds, scoring=evaluate.CV_SCORING
    )
    means = {k: v for k, v in evaluate.cv_summary(scores).items() if k.endswith("_mean")}
    holdout = holdout_figures(train_frame, test_frame)
    return {f"{PREFIX}{k}": v for k, v in means.items()} | {
        f"{PREFIX}test_{k.removeprefix(PREFIX)}": v for k, v in holdout.items()
    }


def skill(metric: str, value: float, baseline: float) -> float:
    """The share of the possible improvement over `baseline` that `value` makes on `metric`."""
    if metric in evaluate.LOWER_IS_BETTER:
        room, gain = baseline, baseline - value
    else:
        room, gain = 1.0 - baseline, value - baseline
    return gain / room if room > 0 else 0.0  # a perfect baseline leaves nothing to gain


def shortfall(figures: dict[str, float], minimum: float) -> list[str]:
    """The gate's reason to refuse a model whose holdout `figures` (with the baseline's, as
    `holdout_figures` names them) do not beat the baseline by `minimum` skill; else none."""
    metric = evaluate.PRIMARY_METRIC
    value, baseline = figures[metric], figures[f"{PREFIX}{metric}"]
    gained = skill(metric, value, baseline)
    if gained >= minimum:
        return []
    return [
        f"{metric} {value:.4f} against the baseline's {baseline:.4f} is a skill of "
        f"{gained:.3f}, below the minimum {minimum} (min_skill_over_baseline)"
    ]
