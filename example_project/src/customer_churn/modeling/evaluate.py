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
from .segments import SegmentReport, class_columns, one_vs_rest_auc, report_for, segment_figures

EXPLAINED_ROWS = 200  # holdout rows whose SHAP contributions are averaged

LABELS = CONTRACT.target.labels  # the model's order of classes: its probability columns
POSITIVE = CONTRACT.target.positive  # the positive class of a binary target, else None
PRIMARY_METRIC = "roc_auc"  # one-vs-rest, averaged over classes, beyond two classes
LOWER_IS_BETTER = {"log_loss"}
if CONTRACT.target.multiclass:
    CV_SCORING = {"roc_auc": "roc_auc_ovr", "f1_macro": "f1_macro", "accuracy": "accuracy"}
else:
    CV_SCORING = {
        "roc_auc": "roc_auc",
        "f1": skm.make_scorer(skm.f1_score, pos_label=POSITIVE, zero_division=0),
        "accuracy": "accuracy",
    }


def compute_metrics(pipeline, frame: pd.DataFrame) -> dict[str, float]:
    """Label metrics, ROC AUC and log loss (see `score`)."""
    features = features_of(frame)
    return score(
        frame[CONTRACT.target.name], pipeline.predict(features), pipeline.predict_proba(features)
    )


def score(y_true, y_pred, probabilities=None) -> dict[str, float]:
    """The metrics of labels and predictions; with `probabilities` also ROC AUC and log loss.

    Two classes: accuracy, precision, recall, F1 (of the positive class), ROC AUC, average
    precision and log loss. More: accuracy, macro precision, recall and F1, weighted F1,
    one-vs-rest ROC AUC and log loss. `probabilities` holds one column per class (in `LABELS`
    order); a single column (as the prediction log keeps) is P(positive class) of a binary
    target, or for more classes only the predicted class's probability, which gives no AUC.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if CONTRACT.target.multiclass:
        figures = _multiclass_labels(y_true, y_pred)
    else:
        figures = _binary_labels(y_true, y_pred)
    if probabilities is None:
        return figures
    probabilities = class_columns(probabilities)
    if probabilities.ndim == 2:
        figures["roc_auc"] = one_vs_rest_auc(y_true, probabilities)
        figures["log_loss"] = skm.log_loss(y_true, probabilities, labels=LABELS)
    if POSITIVE is not None and probabilities.ndim == 2:
        figures["average_precision"] = skm.average_precision_score(
            y_true == POSITIVE, probabilities[:, -1]
        )
    return figures


def _binary_labels(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, pos_label=POSITIVE, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, pos_label=POSITIVE, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, pos_label=POSITIVE, zero_division=0),
    }


def _multiclass_labels(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    macro = {"labels": LABELS, "average": "macro", "zero_division": 0}
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision_macro": skm.precision_score(y_true, y_pred, **macro),
        "recall_macro": skm.recall_score(y_true, y_pred, **macro),
        "f1_macro": skm.f1_score(y_true, y_pred, **macro),
        "f1_weighted": skm.f1_score(
            y_true, y_pred, labels=LABELS, average="weighted", zero_division=0
        ),
    }


def _outcome_figures(pipeline, frame: pd.DataFrame) -> dict[str, Figure]:
    """The confusion matrix, and ROC and precision-recall curves (one per class beyond two)."""
    y_true = np.asarray(frame[CONTRACT.target.name])
    probabilities = pipeline.predict_proba(features_of(frame))
    y_pred = pipeline.predict(features_of(frame))
    size = (5 + 0.4 * max(len(LABELS) - 3, 0), 4.5)
    figure, axes = plt.subplots(figsize=size)
    skm.ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=LABELS, ax=axes, colorbar=False
    )
    axes.set_title("Confusion matrix (holdout)")
    figures = {"confusion_matrix": figure}
    curves = (
        ("roc_curve", skm.RocCurveDisplay, "ROC curve"),
        ("precision_recall_curve", skm.PrecisionRecallDisplay, "Precision-recall curve"),
    )
    shown = [POSITIVE] if POSITIVE is not None else LABELS
    for name, display, title in curves:
        figure, axes = plt.subplots(figsize=(5, 4.5))
        for label in shown:
            column = probabilities[:, LABELS.index(label)]
            display.from_predictions(
                y_true == label, column, ax=axes, name=f"{label}", plot_chance_level=False
            )
        scope = "holdout" if POSITIVE is not None else "holdout, each class against the rest"
        axes.set_title(f"{title} ({scope})")
        figures[name] = figure
    return figures


def as_shown(name: str, value):
    """A CV_SCORING scorer's value (number or array) as shown: errors' `neg_` undone."""
    scorer = CV_SCORING[name]
    return -value if isinstance(scorer, str) and scorer.startswith("neg_") else value


def cv_summary(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean and spread of `cross_validate` scores, with error scores turned positive."""
    summary = {}
    for name in CV_SCORING:
        values = as_shown(name, scores[f"test_{name}"])
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
