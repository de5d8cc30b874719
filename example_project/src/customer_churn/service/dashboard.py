"""The dashboard: a page for people, served by the service itself at `/dashboard`, and its data.

The page (`dashboard.html` beside this module: HTML and a little plain JavaScript) holds no
data. It reads `GET /dashboard/data`, which asks for the API key like `/predict` does when one
is set, and sends its form to `/predict`. No second process, port, image or dependency: it
ships in the package, so the serving image has it.
"""

from __future__ import annotations

import json
import math
import time
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..registry.artifact import ServingModel
from ..settings import Settings
from .holder import ModelHolder
from .metrics import Metrics
from .schemas import example_record
from .scoring import Scorer

CARD = "model_card.md"  # written into the export by training
RECENT = 30  # predictions the page lists


def histogram_quantile(quantile: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's estimate of a quantile from cumulative (upper bound, count) buckets."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = quantile * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return None


def _samples(metric, suffix: str):
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith(suffix):
                yield sample.labels, sample.value


def _quantiles_ms(metric, by: str) -> dict[str, dict[str, float | None]]:
    """p50 and p99 in milliseconds of a histogram, per value of its label `by`."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for labels, value in _samples(metric, "_bucket"):
        buckets.setdefault(labels[by], []).append((float(labels["le"]), value))
    result = {}
    for name, points in buckets.items():
        points.sort()
        p50, p99 = (histogram_quantile(q, points) for q in (0.5, 0.99))
        result[name] = {
            "count": points[-1][1],
            "p50_ms": None if p50 is None else p50 * 1000,
            "p99_ms": None if p99 is None else p99 * 1000,
        }
    return result


def traffic(metrics: Metrics) -> dict[str, Any]:
    """Counters and latency the service has measured since it started."""
    routes: dict[str, dict[str, float]] = {}
    for labels, value in _samples(metrics.requests, "_total"):
        route = routes.setdefault(labels["route"], {"requests": 0, "errors": 0})
        route["requests"] += value
        if labels["status"].startswith("5"):
            route["errors"] += value
    predictions: dict[str, dict[str, float]] = {}
    for labels, value in _samples(metrics.predictions, "_total"):
        predictions.setdefault(labels["variant"], {})[labels["outcome"]] = value
    return {
        "time": time.time(),
        "routes": routes,
        "latency": _quantiles_ms(metrics.latency, "route"),
        "predictions": predictions,
        "model_latency": _quantiles_ms(metrics.model_latency, "variant"),
        "shadow": {labels["result"]: value for labels, value in _samples(metrics.shadow, "_total")},
    }


def model_summary(model: ServingModel | None) -> dict[str, Any] | None:
    """What a person wants to know of a served model, with its model card."""
    if model is None:
        return None
    manifest = model.manifest
    card = Path(model.folder) / CARD
    return {
        "name": manifest.get("name"),
        "version": manifest.get("version"),
        "source": model.source or str(model.folder),
        "backend": model.backend,
        "trained_at": manifest.get("trained_at"),
        "metrics": manifest.get("metrics", {}),
        "card": card.read_text(encoding="utf-8") if card.is_file() else None,
    }


def read_json(path: Path) -> dict[str, Any] | None:
    """A result file of the monitoring job, or None before it has run."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@cache
def page() -> str:
    """The page: HTML and a little plain JavaScript, the same for every visitor."""
    return files(__package__).joinpath("dashboard.html").read_text(encoding="utf-8")


def summary(
    models: ModelHolder, scorer: Scorer, settings: Settings, metrics: Metrics
) -> dict[str, Any]:
    """Everything the dashboard shows, in one answer."""
    prediction_log = scorer.prediction_log
    return {
        "models": {
            "champion": model_summary(models.champion),
            "challenger": model_summary(models.challenger),
        },
        "load_error": models.load_error,
        "challenger_error": models.challenger_error,
        "rollout": {
            "mode": settings.rollout_mode,
            "share": settings.rollout_share,
            "key_header": settings.rollout_key_header,
        },
        "traffic": traffic(metrics),
        "recent": prediction_log.recent(RECENT) if prediction_log is not None else None,
        "example": example_record(),
        "drift": read_json(settings.monitoring_dir / "drift.json"),
        "comparison": read_json(settings.monitoring_dir / "rollout.json"),
    }
