"""The drift job: compares a window of the prediction log with the training reference.

Every contract feature and the predictions are tested for drift (`distributions`); when labels
arrive (a file of request ids and targets), the live metrics of the logged predictions are
compared with the holdout's (`live_metrics`). When the log holds a challenger's predictions (a
split or shadow rollout), the two variants are compared on that traffic too (`variants`).

Writes `drift.json` (the service exposes it as Prometheus gauges), `drift.html` (the report a
person reads), `rollout.json` (the comparison, when there is one) and a dated copy of the drift
JSON into the monitoring folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract import CONTRACT
from ..data.files import write_text
from ..errors import DataError
from ..registry.artifact import MANIFEST, REFERENCE_FILE, REGISTRY_SCHEMES
from ..service.prediction_log import read_log
from ..settings import Settings
from .distributions import Drift, categorical_drift, compare, numeric_drift
from .live_metrics import live_performance
from .report import write_drift_report
from .variants import compare_variants
from .window import logged_window, served_column


def load_reference(source: str, settings: Settings) -> tuple[pd.DataFrame, dict[str, Any], Path]:
    """The drift reference and manifest of a model export (pulled first for a registry URI)."""
    folder = Path(source)
    if source.startswith(REGISTRY_SCHEMES):
        from ..registry.tracking import pull

        folder = pull(source, settings, settings.models_dir / "monitoring-reference")
    if not (folder / MANIFEST).is_file():
        raise DataError(
            f"no model export at '{source}': train first, or pass --model-uri with an export "
            "folder or a models:/ URI"
        )
    if not (folder / REFERENCE_FILE).is_file():
        raise DataError(
            f"the export at '{folder}' has no {REFERENCE_FILE}: it was trained before drift "
            "monitoring existed; train again to create it"
        )
    manifest = json.loads((folder / MANIFEST).read_text())
    return pd.read_parquet(folder / REFERENCE_FILE), manifest, folder


STATISTICS = {"psi": "PSI", "jensen_shannon": "Jensen-Shannon distance"}


def prediction_drift(reference: pd.DataFrame, current: pd.DataFrame, settings: Settings) -> Drift:
    """The verdict on the predictions: beyond two classes the share of each predicted class
    (Jensen-Shannon), else P(positive class) or the predicted value (PSI)."""
    if CONTRACT.target.multiclass:
        return categorical_drift(
            "prediction",
            reference["prediction"],
            current["prediction"],
            CONTRACT.target.labels,
            settings.drift_js_threshold,
        )
    column = served_column()
    return numeric_drift(column, reference[column], current[column], settings.drift_psi_threshold)


def _breaches(
    features: dict[str, Drift],
    prediction: Drift,
    performance: dict[str, Any] | None,
    settings: Settings,
) -> list[str]:
    """The thresholds the window breaches, each said in a sentence."""
    drifted = [name for name, verdict in features.items() if verdict.drifted]
    breaches = []
    if len(drifted) / len(features) >= settings.drift_share_threshold:
        breaches.append(
            f"{len(drifted)} of {len(features)} features drifted ({', '.join(drifted)}), "
            f"at or over the share {settings.drift_share_threshold}"
        )
    if prediction.drifted:
        breaches.append(
            f"the predictions drifted ({STATISTICS[prediction.statistic]} "
            f"{prediction.score:.3f} > {prediction.threshold})"
        )
    if performance and performance["decayed"]:
        breaches.append(
            f"{performance['primary_metric']} fell by {performance['decay']:.1%} against the "
            f"holdout, more than {performance['threshold']:.0%}"
        )
    return breaches


def judge(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    manifest: dict[str, Any],
    labels: Path | None,
    settings: Settings,
) -> dict[str, Any]:
    """The verdicts on a window: per feature, on the predictions, on live metrics with labels."""
    features = compare(reference, current, settings)
    share = sum(verdict.drifted for verdict in features.values()) / len(features)
    prediction = prediction_drift(reference, current, settings)
    performance = live_performance(current, labels, manifest, settings) if labels else None
    breaches = _breaches(features, prediction, performance, settings)
    return {
        "features": {name: asdict(verdict) for name, verdict in features.items()},
        "share_drifted": share,
        "share_threshold": settings.drift_share_threshold,
        "dataset_drift": share >= settings.drift_share_threshold,
        "prediction": asdict(prediction),
        "performance": performance,
        "breaches": breaches,
        "healthy": not breaches,
    }


def _window_facts(
    current: pd.DataFrame, manifest: dict[str, Any], log_dir: Path, unreadable: int
) -> dict[str, Any]:
    """What was compared: the model, the log and the span of records the window covers."""
    return {
        "model": {"name": manifest.get("name"), "version": manifest.get("version")},
        "log_dir": str(log_dir),
        "window": len(current),
        "unreadable_lines": unreadable,
        "first_record": current["time"].iloc[0],
        "last_record": current["time"].iloc[-1],
        "served_versions": {
            str(k): int(v) for k, v in current["model_version"].value_counts().items()
        },
    }


def run(
    settings: Settings,
    *,
    model_uri: str | None = None,
    log_dir: Path | None = None,
    window: int | None = None,
    labels: Path | None = None,
    output_dir: Path | None = None,
) -> dict[str, Any]:
    """Compare the last window of the prediction log with the reference; write the results."""
    reference, manifest, _ = load_reference(model_uri or settings.model_source, settings)
    log_dir = log_dir or settings.prediction_log_dir
    window = window or settings.drift_window
    records, unreadable = read_log(log_dir)
    current, _ = logged_window(log_dir, window, settings.drift_min_records, records)
    verdicts = judge(reference, current, manifest, labels, settings)
    now = datetime.now(UTC)
    result = {
        "time": now.isoformat(timespec="seconds"),
        "timestamp": now.timestamp(),
        **_window_facts(current, manifest, log_dir, unreadable),
        "reference_rows": len(reference),
        **verdicts,
    }
    output_dir = output_dir or settings.monitoring_dir
    write_drift_report(output_dir, result, reference, current, now)
    result["rollout"] = compare_variants(records, window, labels, settings)
    if result["rollout"] is not None:
        write_text(output_dir / "rollout.json", json.dumps(result["rollout"], indent=2))
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What the command prints: one line per drifted column, then the verdict."""
    lines = [
        f"window of {result['window']} records vs {result['reference_rows']} reference rows; "
        f"{result['share_drifted']:.0%} of features drifted"
    ]
    for verdict in [*result["features"].values(), result["prediction"]]:
        mark = "DRIFT" if verdict["drifted"] else "ok"
        lines.append(
            f"  {verdict['name']:<24} {verdict['statistic']:<15} {verdict['score']:8.4f}  {mark}"
        )
    lines += [f"breach: {breach}" for breach in result["breaches"]]
    comparison = result.get("rollout")
    if comparison:
        for variant, figures in comparison["variants"].items():
            live = (figures["live"] or {}).get(comparison["primary_metric"])
            lines.append(
                f"rollout: {variant:<10} version {figures['version']}: {figures['records']} "
                f"records, mean prediction {figures['mean_prediction']:.4f}"
                + (f", live {comparison['primary_metric']} {live:.4f}" if live is not None else "")
            )
        if comparison["agreement"]:
            agreement = comparison["agreement"]
            lines.append(
                f"rollout: agreement {agreement['rate']:.1%} on {agreement['pairs']} shadowed "
                "records"
            )
        lines.append(f"rollout: {comparison['verdict']['summary']}")
        lines += [f"rollout: {reason}" for reason in comparison["verdict"]["reasons"]]
    return lines
