"""The dashboard: a page for people, served by the service itself at `/dashboard`, and its data.

The page (`dashboard.html` beside this module: HTML, plain JavaScript and the SVG charts it
draws) holds no data. It reads `GET /dashboard/data`, which asks for the API key like
`/predict` does when one is set, and sends its form to `/predict`. No second process, port,
image or dependency: it ships in the package, so the serving image has it.

Its charts: requests and latency of the last minutes (`timeline`), the predictions of the last
minutes against the champion's on its training rows (`prediction_shares` of the export), the
variants of a rollout side by side (the service's counters, and the drift job's `rollout.json`),
and each column's drift against its threshold (the drift job's `drift.json`).
"""

from __future__ import annotations

import json
import time
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..contract import CONTRACT
from ..registry.artifact import ServingModel
from ..settings import Settings
from .holder import ModelHolder
from .metrics import Metrics
from .schemas import example_record
from .scoring import Scorer
from .timeline import Timeline, histogram_quantile, samples

CARD = "model_card.md"  # written into the export by training
RECENT = 30  # predictions the page lists


def _quantiles_ms(metric, by: str) -> dict[str, dict[str, float | None]]:
    """p50 and p99 in milliseconds of a histogram, per value of its label `by`."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for labels, value in samples(metric, "_bucket"):
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
    for labels, value in samples(metrics.requests, "_total"):
        route = routes.setdefault(labels["route"], {"requests": 0, "errors": 0})
        route["requests"] += value
        if labels["status"].startswith("5"):
            route["errors"] += value
    predictions: dict[str, dict[str, float]] = {}
    for labels, value in samples(metrics.predictions, "_total"):
        predictions.setdefault(labels["variant"], {})[labels["outcome"]] = value
    return {
        "time": time.time(),
        "routes": routes,
        "latency": _quantiles_ms(metrics.latency, "route"),
        "predictions": predictions,
        "model_latency": _quantiles_ms(metrics.model_latency, "variant"),
        "shadow": {labels["result"]: value for labels, value in samples(metrics.shadow, "_total")},
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


def outcome_names(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The outcomes the `predictions` metric counts, in order, and the names the charts give
    them: the classes."""
    keys = [str(label) for label in manifest.get("classes") or CONTRACT.target.labels]
    return keys, keys


def distribution(
    model: ServingModel | None, outcomes: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """The predictions of the last minutes by variant, against the champion's predictions on
    its training rows (`prediction_shares` of its export; None in an export made before)."""
    manifest = model.manifest if model is not None else {}
    keys, labels = outcome_names(manifest)
    unknown = sorted({outcome for counts in outcomes.values() for outcome in counts} - set(keys))
    keys, labels = keys + unknown, labels + unknown
    shares = manifest.get("prediction_shares")
    return {
        "keys": keys,
        "labels": labels,
        "training": [shares.get(key, 0.0) for key in keys] if shares else None,
        "recent": {
            variant: [counts.get(key, 0.0) for key in keys]
            for variant, counts in sorted(outcomes.items())
        },
    }


def read_json(path: Path) -> dict[str, Any] | None:
    """A result file of the monitoring job, or None before it has run."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@cache
def page() -> str:
    """The page: HTML and plain JavaScript that draws its charts, the same for every visitor."""
    return files(__package__).joinpath("dashboard.html").read_text(encoding="utf-8")


def summary(
    models: ModelHolder, scorer: Scorer, settings: Settings, metrics: Metrics, timeline: Timeline
) -> dict[str, Any]:
    """Everything the dashboard shows, in one answer."""
    prediction_log = scorer.prediction_log
    last_minutes = timeline.summary()
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
            "min_agreement": settings.rollout_min_agreement,
        },
        "traffic": traffic(metrics),
        "timeline": last_minutes,
        "distribution": distribution(models.champion, last_minutes["outcomes"]),
        "recent": prediction_log.recent(RECENT) if prediction_log is not None else None,
        "example": example_record(),
        "drift": read_json(settings.monitoring_dir / "drift.json"),
        "comparison": read_json(settings.monitoring_dir / "rollout.json"),
    }
