"""Champion against challenger on the logged traffic of a split or shadow rollout.

The comparison covers the prediction distributions, agreement on shadowed records and live
metrics once labels arrive, and says whether the challenger may be promoted; `promote`
remains the gate that moves the alias.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract import CONTRACT
from ..modeling import evaluate
from ..service.rollout import CHALLENGER, CHAMPION
from ..settings import Settings
from .distributions import numeric_drift
from .live_metrics import labelled
from .window import frame_of, logged_probabilities, served_column


def _variant_figures(
    frame: pd.DataFrame, labels: Path | None, settings: Settings
) -> dict[str, Any]:
    """What one variant did on the logged traffic; its live metrics when enough labels came."""
    column = frame[served_column()].astype(float)
    latency = frame["latency_ms"].astype(float)
    figures: dict[str, Any] = {
        "version": str(frame["model_version"].mode().iloc[0]) if len(frame) else None,
        "records": len(frame),
        "mean_prediction": float(column.mean()) if len(frame) else None,
        "p50_latency_ms": float(latency.quantile(0.5)) if len(frame) else None,
        "p99_latency_ms": float(latency.quantile(0.99)) if len(frame) else None,
        "labelled": 0,
        "live": None,
    }
    if labels is not None and len(frame):
        # In the order of the records, not of the log: shadowed variants score the same rows.
        joined = labelled(frame, labels).sort_values(["request_id", "row"], kind="stable")
        figures["labelled"] = len(joined)
        if len(joined) >= settings.rollout_min_records:
            try:
                live = evaluate.score(
                    joined[CONTRACT.target.name], joined["prediction"], logged_probabilities(joined)
                )
                figures["live"] = {name: float(value) for name, value in live.items()}
            except ValueError:  # e.g. ROC AUC of labels holding one class only
                figures["live"] = None
    return figures


def _agreement(champion: pd.DataFrame, challenger: pd.DataFrame, tolerance: float):
    """Share of shadowed records on which both variants agree (None without such pairs)."""
    pairs = champion.merge(challenger, on=["request_id", "row"], suffixes=("_a", "_b"))
    if pairs.empty:
        return None
    first, second = pairs["prediction_a"], pairs["prediction_b"]
    if CONTRACT.target.kind == "classification":
        agree = first == second
    else:
        agree = (second.astype(float) - first.astype(float)).abs() <= tolerance * first.abs()
    return {"pairs": len(pairs), "rate": float(agree.mean())}


def _objections(
    figures: dict[str, Any],
    agreement: dict[str, Any] | None,
    distribution: dict[str, Any],
    settings: Settings,
) -> list[str]:
    """Why the challenger should not be promoted: worse live metrics when both variants have
    them; without labels, predictions that look or decide unlike the champion's."""
    reasons = []
    primary = evaluate.PRIMARY_METRIC
    lives = [figures[v]["live"] for v in (CHAMPION, CHALLENGER)]
    if all(lives) and all(primary in live for live in lives):
        champion, challenger = (live[primary] for live in lives)
        lower_is_better = primary in evaluate.LOWER_IS_BETTER
        loss = challenger - champion if lower_is_better else champion - challenger
        # Two variants of one model differ in float32's last digits (the ONNX graph computes
        # in float32: a live RMSE of 2.3048324 against 2.3048325 was seen): no loss.
        rounding = 1e-6 * max(1.0, abs(champion))
        if loss > settings.rollout_max_metric_loss + rounding:
            reasons.append(
                f"live {primary} of the challenger {challenger:.4f} is worse than the "
                f"champion's {champion:.4f} by {loss:.4f}, more than "
                f"{settings.rollout_max_metric_loss} (rollout_max_metric_loss)"
            )
        return reasons
    if distribution["drifted"]:
        reasons.append(
            f"without labels, the challenger's predictions must look like the "
            f"champion's: their PSI {distribution['score']:.3f} exceeds "
            f"{distribution['threshold']}; send labels (--labels) to judge on metrics"
        )
    if agreement is not None and agreement["rate"] < settings.rollout_min_agreement:
        reasons.append(
            f"without labels, the challenger must agree with the champion: it does on "
            f"{agreement['rate']:.1%} of {agreement['pairs']} shadowed records, under "
            f"{settings.rollout_min_agreement:.0%} (rollout_min_agreement)"
        )
    return reasons


def compare_variants(
    records: list[dict[str, Any]], window: int, labels: Path | None, settings: Settings
) -> dict[str, Any] | None:
    """Champion against challenger on the last `window` records of each; None when the log
    holds no challenger prediction."""
    by_variant = {
        variant: frame_of([r for r in records if r.get("variant", CHAMPION) == variant][-window:])
        for variant in (CHAMPION, CHALLENGER)
    }
    if by_variant[CHALLENGER].empty:
        return None
    figures = {v: _variant_figures(f, labels, settings) for v, f in by_variant.items()}
    column = served_column()
    reasons = [
        f"only {figures[v]['records']} {v} records in the log; {settings.rollout_min_records} "
        "are needed (rollout_min_records)"
        for v in (CHAMPION, CHALLENGER)
        if figures[v]["records"] < settings.rollout_min_records
    ]
    agreement = distribution = None
    if not reasons:
        agreement = _agreement(*by_variant.values(), settings.rollout_agreement_tolerance)
        distribution = asdict(
            numeric_drift(
                column,
                by_variant[CHAMPION][column],
                by_variant[CHALLENGER][column],
                settings.drift_psi_threshold,
            )
        )
        reasons = _objections(figures, agreement, distribution, settings)
    version = figures[CHALLENGER]["version"]
    summary = (
        f"the challenger (version {version}) may be promoted: run `promote`, the gate that "
        "also judges it on the holdout"
        if not reasons
        else f"the challenger (version {version}) should not be promoted yet"
    )
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "primary_metric": evaluate.PRIMARY_METRIC,
        "variants": figures,
        "agreement": agreement,
        "distribution": distribution,
        "verdict": {"may_promote": not reasons, "reasons": reasons, "summary": summary},
    }
