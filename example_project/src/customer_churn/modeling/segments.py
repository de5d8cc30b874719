"""Metrics per segment: how the model does for each value of the features the contract marks
as segments (or as protected attributes; a number is split into its `segment_bins` bands),
and the largest gap between those values.

The gap is measured on `GAP_METRIC` (ROC AUC for a classifier: ranking quality within each
group, whatever its base rate; MAPE for a regressor: an error relative to each group's own
prices) over the values with at least `min_rows` holdout rows; smaller groups are listed but
too noisy to judge. The table also holds what a fairness review looks at: for a classifier
the actual and predicted positive rates and the true and false positive rates (the accuracy
beyond two classes), for a regressor the bias (mean of prediction minus actual).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm

from ..contract import CONTRACT
from ..fields import Numeric

CLASSIFICATION = CONTRACT.target.kind == "classification"
GAP_METRIC = "roc_auc" if CLASSIFICATION else "mape"
MISSING = "(missing)"


@dataclass(frozen=True)
class Gap:
    """The largest difference of `GAP_METRIC` between two values of one segment feature."""

    feature: str
    gap: float
    best: str
    worst: str
    values: int  # how many values had enough rows to be compared

    def describe(self) -> str:
        return (
            f"{self.feature}: {GAP_METRIC} {self.gap:.4f} apart between "
            f"'{self.best}' and '{self.worst}'"
        )


@dataclass
class SegmentReport:
    table: pd.DataFrame  # one row per (feature, value): rows and metrics
    gaps: dict[str, Gap]  # per feature, only where two or more values could be compared
    min_rows: int

    @property
    def largest(self) -> Gap | None:
        return max(self.gaps.values(), key=lambda g: g.gap, default=None)

    def as_dict(self) -> dict:
        """The report as JSON: the gap metric, the gaps and the table."""
        table = self.table.astype(object).where(self.table.notna(), None)
        return {
            "gap_metric": GAP_METRIC,
            "min_rows": self.min_rows,
            "largest": asdict(self.largest) if self.largest else None,
            "gaps": {name: asdict(gap) for name, gap in self.gaps.items()},
            "table": table.to_dict("records"),
        }

    def metrics(self) -> dict[str, float]:
        """Figures for the run and the gate: `segment_gap_<feature>` and `segment_gap`."""
        figures = {f"segment_gap_{name}": gap.gap for name, gap in self.gaps.items()}
        if self.largest is not None:
            figures["segment_gap"] = self.largest.gap
        return figures


def class_columns(probabilities) -> np.ndarray:
    """Probabilities as one column per class (in the contract's `labels` order); a single
    column is P(positive class) of a binary target. Beyond two classes a single column (the
    predicted class's probability, as the prediction log keeps) stays one column."""
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim == 1 and not CONTRACT.target.multiclass:
        return np.column_stack([1 - probabilities, probabilities])
    if probabilities.ndim == 2:  # rows the prediction log rounded sum to 1 only nearly
        return probabilities / probabilities.sum(axis=1, keepdims=True)
    return probabilities


def one_vs_rest_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC of the positive class (two classes), or the mean over classes of each class
    against the rest (more), counting the classes that both occur and not in `y_true`; NaN
    when none does or when only the predicted class's probability is known."""
    probabilities = class_columns(probabilities)
    if probabilities.ndim == 1:
        return math.nan
    labels = CONTRACT.target.labels
    judged = labels if CONTRACT.target.multiclass else labels[-1:]
    scores = []
    for label in judged:
        hits = np.asarray(y_true) == label
        if hits.any() and not hits.all():
            scores.append(skm.roc_auc_score(hits, probabilities[:, labels.index(label)]))
    return float(np.mean(scores)) if scores else math.nan


def _classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, probabilities: np.ndarray):
    figures = {
        "accuracy": float(np.mean(y_pred == y_true)),
        "roc_auc": one_vs_rest_auc(y_true, probabilities),
    }
    if CONTRACT.target.multiclass:
        return figures
    positive = CONTRACT.target.positive
    positives, negatives = y_true == positive, y_true != positive
    return {
        "positive_rate": float(np.mean(positives)),
        "predicted_positive_rate": float(np.mean(y_pred == positive)),
        "true_positive_rate": _share(y_pred[positives] == positive),
        "false_positive_rate": _share(y_pred[negatives] == positive),
    } | figures


def _share(hits: np.ndarray) -> float:
    """The share of True in `hits`; NaN when there is nothing to count."""
    return float(np.mean(hits)) if len(hits) else math.nan


def _regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, probability=None):
    return {
        "mean_target": float(np.mean(y_true)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
        "mape": float(skm.mean_absolute_percentage_error(y_true, y_pred)),
        "bias": float(np.mean(y_pred - y_true)),
    }


def segment_values(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, dict[str, int]]:
    """The segment of each row for feature `name` (its value, or its band for a binned number),
    and the order to list the segments in."""
    feature = CONTRACT.feature(name)
    column = frame[name]
    if isinstance(feature, Numeric) and feature.segment_bins:
        bands = feature.bands()
        numbers = column.astype(float).to_numpy()
        index = np.searchsorted(feature.segment_bins, numbers, side="right")
        values = np.array(bands, dtype=object)[np.minimum(index, len(bands) - 1)]
        values[np.isnan(numbers)] = MISSING
        return values, {band: i for i, band in enumerate(bands)}
    return column.astype(object).where(column.notna(), MISSING).to_numpy(), {}


def segment_report(
    frame: pd.DataFrame,
    predictions,
    probabilities=None,
    features: list[str] | None = None,
    min_rows: int = 30,
) -> SegmentReport:
    """Metrics per value of each segment feature of `frame` (labelled rows) and their gaps.

    `predictions` (and `probabilities`, one column per class, for a classifier) are the answers
    on `frame`, row by row; `features` defaults to the contract's segments.
    """
    features = CONTRACT.segments if features is None else features
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise ValueError(f"segment features {missing} are not columns of the data")
    if len(predictions) != len(frame):
        raise ValueError(f"{len(predictions)} predictions for {len(frame)} rows")
    if CLASSIFICATION and probabilities is None:
        raise ValueError("a classifier's segment report needs the probabilities of the classes")
    y_true = frame[CONTRACT.target.name].to_numpy()
    y_pred = np.asarray(predictions)
    scores = np.asarray(probabilities) if probabilities is not None else None
    measure = _classification_metrics if CLASSIFICATION else _regression_metrics
    rows, gaps = [], {}
    for name in features:
        values, order = segment_values(frame, name)
        per_value = {}
        for value in sorted(set(values), key=lambda v: (v == MISSING, order.get(v, 0), str(v))):
            mask = values == value
            figures = measure(y_true[mask], y_pred[mask], scores[mask] if CLASSIFICATION else None)
            rows.append({"feature": name, "value": value, "rows": int(mask.sum())} | figures)
            if mask.sum() >= min_rows and math.isfinite(figures[GAP_METRIC]):
                per_value[value] = figures[GAP_METRIC]
        if len(per_value) >= 2:
            # "best" is the value the model serves best: highest AUC, or lowest MAPE.
            order = sorted(per_value, key=per_value.get, reverse=CLASSIFICATION)
            gap = abs(per_value[order[0]] - per_value[order[-1]])
            gaps[name] = Gap(name, float(gap), str(order[0]), str(order[-1]), len(per_value))
    return SegmentReport(pd.DataFrame(rows), gaps, min_rows)


def report_for(pipeline, frame: pd.DataFrame, min_rows: int = 30) -> SegmentReport:
    """The segment report of a fitted pipeline's answers on labelled `frame`."""
    features = frame[CONTRACT.feature_names]
    probabilities = pipeline.predict_proba(features) if CLASSIFICATION else None
    return segment_report(frame, pipeline.predict(features), probabilities, min_rows=min_rows)


def segment_figures(report: SegmentReport) -> dict[str, Figure]:
    """One figure per segment feature: `GAP_METRIC` per value, and rates (or bias) per value."""
    import matplotlib.pyplot as plt

    figures = {}
    if report.table.empty:  # the contract marks no segment
        return figures
    for name, table in report.table.groupby("feature", sort=False):
        labels = [
            f"{value}\n({rows} rows)"
            for value, rows in zip(table["value"], table["rows"], strict=True)
        ]
        positions = np.arange(len(table))
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(table) + 2.2))
        small = table["rows"] < report.min_rows
        colours = np.where(small, "#bbbbbb", "#4c72b0")
        left.barh(positions, table[GAP_METRIC], color=colours)
        left.set_yticks(positions, labels)
        left.set_xlabel(f"{GAP_METRIC} (grey: fewer than {report.min_rows} rows, not compared)")
        gap = report.gaps.get(name)
        left.set_title(f"{GAP_METRIC} by {name}" + (f": gap {gap.gap:.3f}" if gap else ""))
        if "positive_rate" in table:
            height = 0.4
            right.barh(positions - height / 2, table["positive_rate"], height, label="actual")
            right.barh(
                positions + height / 2, table["predicted_positive_rate"], height, label="predicted"
            )
            right.set_xlabel("share of positive outcomes")
            right.legend(loc="best")
            right.set_title(f"Actual vs predicted positive rate by {name}")
        elif CLASSIFICATION:
            right.barh(positions, table["accuracy"], color="#dd8452")
            right.set_xlabel("share of rows whose class is predicted right")
            right.set_title(f"Accuracy by {name}")
        else:
            right.barh(positions, table["bias"], color="#dd8452")
            right.axvline(0, color="black", linewidth=0.8)
            right.set_xlabel("mean of prediction minus actual")
            right.set_title(f"Bias by {name}")
        right.set_yticks(positions, [""] * len(table))
        figure.tight_layout()
        figures[f"segments_{name}"] = figure
    return figures
