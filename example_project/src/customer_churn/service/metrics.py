"""Prometheus metrics of the service, and of the drift job's last result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric

REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
MODEL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._add_request_metrics()
        self._add_model_metrics()
        self._add_prediction_log_metrics()
        self._outcomes: dict[str, Any] = {}
        self._requests: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _add_request_metrics(self) -> None:
        self.requests = Counter(
            "http_requests",
            "HTTP requests by route, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.shed = Counter(
            "requests_shed",
            "Requests refused with 503 because the event loop ran late (overload)",
            registry=self.registry,
        )

    def _add_model_metrics(self) -> None:
        self.predictions = Counter(
            "predictions",
            "Predictions made, by predicted class or value bucket and by model variant "
            "(champion, or challenger in a rollout)",
            ["outcome", "variant"],
            registry=self.registry,
        )
        self.model = Info(
            "model", "The models being served, by variant", ["variant"], registry=self.registry
        )
        self.model_latency = Histogram(
            "model_latency_seconds",
            "Time the model took to score a request, by variant (split and shadow modes)",
            ["variant"],
            buckets=MODEL_BUCKETS,
            registry=self.registry,
        )
        self.shadow = Counter(
            "shadow_requests",
            "Requests the challenger scored in shadow mode, by result (ok, error, dropped)",
            ["result"],
            registry=self.registry,
        )
        self.challenger_loaded = Gauge(
            "challenger_loaded",
            "1 once the challenger of a rollout is loaded and answering, else 0",
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "model_loaded", "1 once a model is loaded and answering, else 0", registry=self.registry
        )
        for result in ("ok", "error", "dropped"):  # at 0 from the start: increase() needs one
            self.shadow.labels(result)

    def _add_prediction_log_metrics(self) -> None:
        self.logged = Counter(
            "prediction_log_records",
            "Records written to the prediction log",
            registry=self.registry,
        )
        self.dropped = Counter(
            "prediction_log_dropped",
            "Records the prediction log could not keep, by reason",
            ["reason"],
            registry=self.registry,
        )
        # Exposed at 0 from the start: increase() needs a first sample.
        for reason in ("queue_full", "write_error", "encode_error"):
            self.dropped.labels(reason)

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count a request and time it; label lookups are cached (this runs on every request)."""
        key = (route, method, status)
        children = self._requests.get(key)
        if children is None:
            children = self._requests[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def count_prediction(self, outcome: str) -> None:
        """Count one prediction of the champion; label lookups are cached, this runs once per
        record."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.predictions.labels(outcome, "champion")
        child.inc()

    def count_variant_prediction(self, outcome: str, variant: str) -> None:
        """Count one prediction of either variant (rollout modes)."""
        self.predictions.labels(outcome, variant).inc()


class DriftCollector:
    """Exposes the latest result of the drift job (its `drift.json`) as Prometheus gauges.

    The file is read when Prometheus scrapes, and only when it changed; without it (the job has
    not run yet) no drift series is exposed, which the `DriftJobNotRunning` alert notices.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: float | None = None
        self._result: dict[str, Any] | None = None

    def _latest(self) -> dict[str, Any] | None:
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            return None
        if stamp != self._stamp:
            try:
                self._result = json.loads(self.path.read_text())
                self._stamp = stamp
            except (OSError, ValueError):
                return self._result  # being rewritten: keep the previous result
        return self._result

    def collect(self) -> Iterator[Metric]:
        result = self._latest()
        if not result:
            return
        yield GaugeMetricFamily(
            "drift_last_run_timestamp_seconds",
            "When the drift job last ran (Unix time)",
            value=result["timestamp"],
        )
        yield GaugeMetricFamily(
            "drift_window_records", "Logged records the drift job compared", value=result["window"]
        )
        yield GaugeMetricFamily(
            "drift_share_of_features",
            "Share of features that drifted in the last window",
            value=result["share_drifted"],
        )
        yield GaugeMetricFamily(
            "drift_dataset_detected",
            "1 when the share of drifted features reached its threshold",
            value=float(result["dataset_drift"]),
        )
        yield from _feature_gauges(result["features"])
        prediction = result["prediction"]
        yield GaugeMetricFamily(
            "drift_prediction_score",
            f"Drift statistic of the predictions ({prediction['statistic']})",
            value=prediction["score"],
        )
        yield GaugeMetricFamily(
            "drift_prediction_detected",
            "1 when the predictions drifted",
            value=float(prediction["drifted"]),
        )
        performance = result.get("performance")
        if performance:
            live = GaugeMetricFamily(
                "model_live_metric",
                "Metrics of the served model on logged records whose labels arrived",
                labels=["metric"],
            )
            for name, value in performance["live"].items():
                live.add_metric([name], value)
            yield live


def _feature_gauges(features: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    """The drift score of each feature, and whether it drifted."""
    score = GaugeMetricFamily(
        "drift_feature_score",
        "Drift statistic of each feature (PSI for numbers, Jensen-Shannon for categories)",
        labels=["feature", "statistic"],
    )
    detected = GaugeMetricFamily(
        "drift_feature_detected", "1 when a feature drifted", labels=["feature"]
    )
    for name, feature in features.items():
        score.add_metric([name, feature["statistic"]], feature["score"])
        detected.add_metric([name], float(feature["drifted"]))
    yield score
    yield detected
