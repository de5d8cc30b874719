"""The answer to valid records of POST /predict: scored by the model that answers, counted in the
metrics and written to the prediction log (both paths of /predict use it)."""

from __future__ import annotations

import time
from typing import Any

from ..contract import CONTRACT
from ..registry.artifact import ServingModel, headline
from ..settings import Settings
from .holder import ModelHolder
from .logs import REQUEST_ID
from .metrics import Metrics
from .prediction_log import PredictionLog
from .rollout import CHAMPION, Rollout


def outcomes(model: ServingModel, predictions) -> list[str]:
    """The label of each prediction in the `predictions` metric: the class."""
    return [str(label) for label in predictions]


CLASS_KEYS = [str(label) for label in CONTRACT.target.labels]


def classes_answers(predictions, probabilities) -> list[dict[str, Any]]:
    """Each record's class, the probability of the positive (or predicted) class and of
    every class, as numbers of Python's own (what the JSON encoder takes fastest)."""
    shares = headline(probabilities).tolist()
    return [
        {
            "prediction": label,
            "probability": share,
            "probabilities": dict(zip(CLASS_KEYS, row, strict=True)),
        }
        for label, share, row in zip(
            predictions.tolist(), shares, probabilities.tolist(), strict=True
        )
    ]


class Scorer:
    """Scores valid records and builds the answer; in a rollout mode, the rollout chooses the
    model. The prediction log and the rollout's workers run between `start()` and `close()`."""

    def __init__(self, settings: Settings, models: ModelHolder, metrics: Metrics) -> None:
        self.settings = settings
        self.models = models
        self.metrics = metrics
        self.rollout: Rollout | None = None  # single mode: the hot path checks this only
        if settings.rollout_mode != "single":
            self.rollout = Rollout(
                settings.rollout_mode,
                settings.rollout_share,
                settings.rollout_key_header,
                metrics,
                outcomes,
                settings.shadow_queue,
            )
        self.prediction_log: PredictionLog | None = None

    def start(self) -> None:
        """Open the prediction log (if enabled), then start the rollout's shadow worker."""
        settings = self.settings
        if settings.prediction_log:
            self.prediction_log = PredictionLog(
                settings.prediction_log_dir,
                sample_rate=settings.prediction_log_sample_rate,
                max_queue=settings.prediction_log_queue,
                max_bytes=settings.prediction_log_max_bytes,
                keep_files=settings.prediction_log_keep_files,
                on_drop=lambda reason, count: self.metrics.dropped.labels(reason).inc(count),
                on_write=self.metrics.logged.inc,
            )
        if self.rollout is not None:
            self.rollout.start(self.prediction_log)

    def close(self) -> None:
        """Score what the shadow worker holds, then write what the prediction log holds."""
        if self.rollout is not None:
            self.rollout.close()  # the shadow scores queued are logged too
        if self.prediction_log is not None:
            self.prediction_log.close()  # what is queued is written before exit

    def answer(self, loaded: ServingModel, inputs: list[dict[str, Any]], started: float, headers):
        """The answer to valid records: predictions, counted and logged. `headers` (the
        request's) are read in a rollout only, for the key of the split."""
        request_id = REQUEST_ID.get()
        variant = CHAMPION
        rollout = self.rollout
        if rollout is None:
            predictions, probabilities = loaded.predict_records(inputs)
            for label in predictions.tolist():
                self.metrics.count_prediction(str(label))
        else:
            loaded, variant, predictions, probabilities = rollout.score(
                loaded, self.models.challenger, headers, request_id, inputs
            )
        answers = classes_answers(predictions, probabilities)
        prediction_log = self.prediction_log
        if prediction_log is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            prediction_log.record(
                request_id, loaded.version, elapsed_ms, inputs, predictions, probabilities, variant
            )
        return {
            "model_version": loaded.version,
            "variant": variant,
            "request_id": request_id,
            "predictions": answers,
        }
