"""Holdout metrics and the plots a person looks at, written to reports/ and logged with each run.

Beyond the metrics: what drives the model (permutation importance, and the average size of
each feature's SHAP contribution; see explain.py) and how it does per segment (segments.py).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # render to files: no display needed

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance

from ..contract import CONTRACT
from ..features import features_of
from .explain import Explainer
from .explain import background as explain_background
from .segments import SegmentReport, report_for, segment_figures

EXPLAINED_ROWS = 200  # holdout rows whose SHAP contributions are averaged

PRIMARY_METRIC = "roc_auc"
LOWER_IS_BETTER = {"log_loss"}
CV_SCORING = {"roc_auc": "roc_auc", "f1": "f1", "accuracy": "accuracy"}


def compute_metrics(pipeline, frame: pd.DataFrame) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC, average precision and log loss."""
    probability = pipeline.predict_proba(features_of(frame))[:, 1]
    y_pred = pipeline.predict(features_of(frame))
    return score(frame[CONTRACT.target.name], y_pred, probability)


def score(y_true, y_pred, probability) -> dict[str, float]:
    """The metrics of `compute_metrics`, from labels, predictions and P(class 1)."""
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(y_true, probability),
        "average_precision": skm.average_precision_score(y_true, probability),
        "log_loss": skm.log_loss(y_true, probability, labels=list(CONTRACT.target.classes)),
    }


def _outcome_figures(pipeline, frame: pd.DataFrame) -> dict[str, Figure]:
    y_true = frame[CONTRACT.target.name]
    probability = pipeline.predict_proba(features_of(frame))[:, 1]
    y_pred = pipeline.predict(features_of(frame))
    figures = {}
    figure, axes = plt.subplots(figsize=(5, 4.5))
    skm.ConfusionMatrixDisplay.from_predictions(y_true, y_pred, ax=axes, colorbar=False)
    axes.set_title("Confusion matrix (holdout)")
    figures["confusion_matrix"] = figure
    figure, axes = plt.subplots(figsize=(5, 4.5))
    skm.RocCurveDisplay.from_predictions(y_true, probability, ax=axes, plot_chance_level=True)
    axes.set_title("ROC curve (holdout)")
    figures["roc_curve"] = figure
    figure, axes = plt.subplots(figsize=(5, 4.5))
    skm.PrecisionRecallDisplay.from_predictions(
        y_true, probability, ax=axes, plot_chance_level=True
    )
    axes.set_title("Precision-recall curve (holdout)")
    figures["precision_recall_curve"] = figure
    return figures


def cv_summary(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean and spread of `cross_validate` scores, with error scores turned positive."""
    summary = {}
    for name, scorer in CV_SCORING.items():
        values = scores[f"test_{name}"]
        values = -values if scorer.startswith("neg_") else values
        summary[f"cv_{name}_mean"] = float(np.mean(values))
        summary[f"cv_{name}_std"] = float(np.std(values))
    return summary


def feature_importance(pipeline, frame: pd.DataFrame, seed: int) -> pd.Series:
    """Permutation importance on the holdout, per contract feature (not per encoded column)."""
    result = permutation_importance(
        pipeline,
        features_of(frame),
        frame[CONTRACT.target.name],
        n_repeats=5,
        random_state=seed,
        scoring=CV_SCORING[PRIMARY_METRIC],
    )
    return pd.Series(result.importances_mean, index=CONTRACT.feature_names).sort_values()


@dataclass
class Findings:
    """What evaluation finds beyond the metrics."""

    importance: pd.Series  # permutation importance per contract feature
    contributions: pd.Series  # mean |SHAP contribution| per contract feature
    output_space: str  # what the contributions add up to
    segments: SegmentReport

    def explanations(self) -> dict:
        return {
            "permutation_importance": {
                "scoring": PRIMARY_METRIC,
                "values": self.importance.sort_values(ascending=False).round(6).to_dict(),
            },
            "mean_absolute_shap": {
                "output": self.output_space,
                "rows": EXPLAINED_ROWS,
                "values": self.contributions.round(6).to_dict(),
            },
        }


def find(
    pipeline,
    frame: pd.DataFrame,
    seed: int,
    min_rows: int = 30,
    background: list[float] | None = None,
    segments: SegmentReport | None = None,
) -> Findings:
    """Explanations and the segment report of `pipeline` on labelled `frame` (the holdout).

    `background` is the mean encoded training row a linear model is explained from; without
    it, the mean row of `frame` is used.
    """
    if background is None:
        background = explain_background(pipeline, frame)
    explained = Explainer(pipeline, background).explain(
        frame.sample(min(EXPLAINED_ROWS, len(frame)), random_state=seed)
    )
    return Findings(
        feature_importance(pipeline, frame, seed),
        explained.mean_absolute(),
        explained.space,
        segments or report_for(pipeline, frame, min_rows),
    )


def make_figures(pipeline, frame: pd.DataFrame, findings: Findings) -> dict[str, Figure]:
    """Outcome plots for the problem type, feature importance and one figure per segment."""
    figures = _outcome_figures(pipeline, frame)
    height = 0.4 * len(CONTRACT.features) + 1.5
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    findings.importance.plot.barh(ax=left, color="#4c72b0")
    left.set_xlabel(f"Drop in {PRIMARY_METRIC} when the feature is shuffled")
    left.set_title("Permutation importance (holdout)")
    findings.contributions.reindex(findings.importance.index).plot.barh(ax=right, color="#55a868")
    right.set_xlabel(f"Mean |SHAP contribution| ({findings.output_space})")
    right.set_title("Average contribution to one answer")
    figure.tight_layout()
    figures["feature_importance"] = figure
    return figures | segment_figures(findings.segments)


def write_report(
    metrics: dict[str, float],
    figures: dict[str, Figure],
    reports_dir: Path,
    findings: Findings | None = None,
) -> list[Path]:
    """Write metrics.json, one PNG per figure and, with `findings`, explanations.json and
    segments.json; return the written paths."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    documents = {"metrics.json": {k: round(float(v), 6) for k, v in metrics.items()}}
    if findings is not None:
        documents["explanations.json"] = findings.explanations()
        documents["segments.json"] = findings.segments.as_dict()
    paths = []
    for name, document in documents.items():
        path = reports_dir / name
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(document, indent=2))
        temporary.replace(path)
        paths.append(path)
    for name, figure in figures.items():
        path = reports_dir / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)
    return paths
