"""Live metrics: the logged predictions whose labels arrived, scored against the holdout's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..contract import CONTRACT
from ..data.ingest import load_table
from ..errors import DataError
from ..modeling import evaluate
from ..settings import Settings
from .window import logged_probabilities


def labelled(logged: pd.DataFrame, labels_path: Path) -> pd.DataFrame:
    """Logged records joined with the labels that arrived (by request_id and row)."""
    target = CONTRACT.target.name
    labels = load_table(labels_path)
    missing = [c for c in ("request_id", target) if c not in labels.columns]
    if missing:
        raise DataError(
            f"the labels file '{labels_path}' lacks the column(s) {missing}: it needs "
            f"request_id, {target} and optionally row (default 0)"
        )
    if "row" not in labels.columns:
        labels = labels.assign(row=0)
    labels = labels[["request_id", "row", target]].astype({"request_id": str, "row": int})
    return logged.astype({"request_id": str, "row": int}).merge(labels, on=["request_id", "row"])


def live_performance(
    logged: pd.DataFrame, labels_path: Path, manifest: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """Metrics of the logged predictions whose labels arrived, against the holdout's."""
    target = CONTRACT.target.name
    joined = labelled(logged, labels_path)
    if len(joined) < settings.drift_min_records:
        raise DataError(
            f"only {len(joined)} logged records match a label in '{labels_path}' (by request_id "
            f"and row); at least {settings.drift_min_records} are needed"
        )
    probabilities = logged_probabilities(joined)
    try:
        live = evaluate.score(joined[target], joined["prediction"], probabilities)
    except ValueError as error:  # e.g. ROC AUC of a window holding one class only
        raise DataError(f"the labelled records cannot be scored: {error}") from error
    primary = evaluate.PRIMARY_METRIC
    reference = manifest.get("metrics", {}).get(f"test_{primary}")
    decay = None
    if reference and primary in live:
        change = (float(live[primary]) - reference) / abs(reference)
        decay = change if primary in evaluate.LOWER_IS_BETTER else -change
    return {
        "labelled": len(joined),
        "live": {name: float(value) for name, value in live.items()},
        "primary_metric": primary,
        "reference": reference,
        "decay": decay,
        "threshold": settings.drift_max_metric_decay,
        "decayed": decay is not None and decay > settings.drift_max_metric_decay,
    }
