"""Fitting: validate and split the data, cross-validate, fit on the training split, score the
holdout. Preprocessing is fitted inside the pipeline, on the training split only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.model_selection import cross_validate

from ..contract import CONTRACT
from ..data.ingest import load_table, split
from ..data.validate import validate
from ..features import build_pipeline, features_of
from ..settings import Settings
from . import evaluate
from .segments import SegmentReport, report_for


@dataclass
class Fitted:
    pipeline: Any
    train_frame: pd.DataFrame
    test_frame: pd.DataFrame
    metrics: dict[str, float]
    segments: SegmentReport


def fit_and_evaluate(
    settings: Settings, estimator, on_step: Callable[[str], None] = lambda _: None
) -> Fitted:
    """Validate and split the data, cross-validate, fit on the training split, score the holdout."""
    on_step(f"Loading and validating {settings.data_path}")
    frame = validate(load_table(settings.data_path))
    train_frame, test_frame = split(frame, settings.test_size, settings.seed)
    x_train, y_train = features_of(train_frame), train_frame[CONTRACT.target.name]
    pipeline = build_pipeline(estimator)

    on_step(f"Cross-validating on {len(train_frame)} rows ({settings.cv_folds} folds)")
    scores = cross_validate(
        pipeline, x_train, y_train, cv=settings.cv_folds, scoring=evaluate.CV_SCORING
    )
    metrics = evaluate.cv_summary(scores)

    on_step("Fitting on the training split")
    pipeline.fit(x_train, y_train)

    on_step(f"Evaluating on the {len(test_frame)}-row holdout")
    segments = report_for(pipeline, test_frame, settings.segment_min_rows)
    holdout = evaluate.compute_metrics(pipeline, test_frame) | segments.metrics()
    metrics |= {f"test_{name}": value for name, value in holdout.items()}
    return Fitted(pipeline, train_frame, test_frame, metrics, segments)
