"""Safe rollouts: a challenger serves beside the champion, on a share of traffic or in shadow.

- split: a hash of the request's key (a customer id, say) sends `share` of the keys to the
  challenger; the same key always meets the same model, whatever the replica.
- shadow: the champion answers; the challenger scores the same records on a worker thread,
  off the request path, into the prediction log. A slow or failing challenger costs the
  caller nothing: its queue is bounded (requests beyond it are skipped and counted) and its
  errors are counted, never raised.

In `single` mode none of this is built: the service's hot path checks one variable.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..registry.artifact import ServingModel
    from .metrics import Metrics
    from .prediction_log import PredictionLog

CHAMPION, CHALLENGER = "champion", "challenger"
VARIANTS = (CHAMPION, CHALLENGER)
log = logging.getLogger(__name__)


def bucket(key: str) -> float:
    """Where a key falls in [0, 1): a stable hash, the same in every process and release."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose(key: str, share: float) -> str:
    """The variant that answers `key` when `share` of the keys go to the challenger."""
    return CHALLENGER if bucket(key) < share else CHAMPION


class ShadowScorer:
    """Scores requests with the challenger on a worker thread, after the caller is answered.

    The worker wakes when a request is queued, lets `linger` seconds pass so that the request
    path runs on and more requests queue, then scores everything queued in one call: a batch
    costs the model little more than one record, and the worker holds the interpreter lock
    once per batch rather than once per request. Each request's latency is its share of the
    batch's time.
    """

    def __init__(
        self,
        metrics: Metrics,
        outcomes: Callable[[ServingModel, Any], list[str]],
        max_queue: int,
        prediction_log: PredictionLog | None,
        linger: float = 0.005,
        max_batch: int = 256,
    ) -> None:
        self.metrics = metrics
        self.outcomes = outcomes
        self.max_queue = max_queue
        self.prediction_log = prediction_log
        self.linger = linger
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, model: ServingModel, request_id: str, inputs: Sequence[dict]) -> bool:
        """Queue a request for the challenger; never blocks. False when the queue is full."""
        if self._queue.qsize() >= self.max_queue:
            self.metrics.shadow.labels("dropped").inc()
            return False
        self._queue.put((model, request_id, inputs))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Score what is queued, then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            time.sleep(self.linger)
            with contextlib.suppress(queue.Empty):
                while len(batch) < self.max_batch:
                    batch.append(self._queue.get_nowait())
            stopping = None in batch
            requests = [item for item in batch if item is not None]
            # One call per model (a reload may swap the challenger between two requests).
            for model in {id(item[0]): item[0] for item in requests}.values():
                self._score(model, [item[1:] for item in requests if item[0] is model])

    def _score(self, model: ServingModel, requests: list[tuple[str, Sequence[dict]]]) -> None:
        started = time.perf_counter()
        records = [record for _, inputs in requests for record in inputs]
        try:
            predictions, probabilities = model.predict_records(records)
            outcomes = self.outcomes(model, predictions)
        except Exception:
            if len(requests) > 1:  # find the request at fault: score them one by one
                for request in requests:
                    self._score(model, [request])
                return
            self.metrics.shadow.labels("error").inc()
            self._failures += 1
            if self._failures == 1 or self._failures % 1000 == 0:  # a line, not a flood
                log.exception("the challenger failed in shadow (%d failures)", self._failures)
            return
        seconds_per_record = (time.perf_counter() - started) / len(records)
        for outcome in outcomes:
            self.metrics.count_variant_prediction(outcome, CHALLENGER)
        start = 0
        for request_id, inputs in requests:
            end = start + len(inputs)
            seconds = seconds_per_record * len(inputs)
            self.metrics.shadow.labels("ok").inc()
            self.metrics.model_latency.labels(CHALLENGER).observe(seconds)
            if self.prediction_log is not None:
                self.prediction_log.record(
                    request_id,
                    model.version,
                    seconds * 1000,
                    inputs,
                    predictions[start:end],
                    None if probabilities is None else probabilities[start:end],
                    variant=CHALLENGER,
                    shadow=True,
                )
            start = end


class Rollout:
    """Which model answers a request in `split` or `shadow` mode, and the scoring around it."""

    def __init__(
        self,
        mode: str,
        share: float,
        key_header: str,
        metrics: Metrics,
        outcomes: Callable[[ServingModel, Any], list[str]],
        shadow_queue: int,
    ) -> None:
        self.mode = mode
        self.share = share
        self.key_header = key_header
        self._raw_header = key_header.encode("latin-1")
        self.metrics = metrics
        self.outcomes = outcomes
        self.shadow_queue = shadow_queue
        self.shadow: ShadowScorer | None = None

    def start(self, prediction_log: PredictionLog | None) -> None:
        """Start the shadow worker (in shadow mode), once the prediction log exists."""
        if self.mode == "shadow":
            self.shadow = ShadowScorer(
                self.metrics, self.outcomes, self.shadow_queue, prediction_log
            )

    def close(self) -> None:
        if self.shadow is not None:
            self.shadow.close()

    def key(self, headers: Mapping, request_id: str) -> str:
        """The request's rollout key: its header (from the raw ASGI headers, or Starlette's),
        else the request id."""
        if isinstance(headers, dict):  # raw: bytes names in lower case
            sent = headers.get(self._raw_header)
            return sent.decode("latin-1") if sent else request_id
        return headers.get(self.key_header) or request_id

    def score(
        self,
        champion: ServingModel,
        challenger: ServingModel | None,
        headers: Mapping,
        request_id: str,
        inputs: Sequence[dict],
    ) -> tuple[ServingModel, str, Any, Any]:
        """The model that answered, its variant, its predictions and probabilities."""
        model, variant = champion, CHAMPION
        split = self.mode == "split" and challenger is not None
        if split and choose(self.key(headers, request_id), self.share) == CHALLENGER:
            model, variant = challenger, CHALLENGER
        started = time.perf_counter()
        predictions, probabilities = model.predict_records(inputs)
        self.metrics.model_latency.labels(variant).observe(time.perf_counter() - started)
        for outcome in self.outcomes(model, predictions):
            self.metrics.count_variant_prediction(outcome, variant)
        if challenger is not None and self.shadow is not None:
            self.shadow.submit(challenger, request_id, inputs)
        return model, variant, predictions, probabilities
