"""What the service tells operators, and how it protects itself: Prometheus metrics, JSON
logs, request ids, body limits, load shedding and request time-outs.

One pure-ASGI middleware does the per-request work (a few microseconds): it stamps a
request id, sheds load when the event loop runs late, refuses oversized bodies, bounds the
time a request may take, and records the request in metrics and the access log.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
# The scope key under which `RequestGuard` leaves the request's headers as a dictionary, so
# that the app inside it need not build the dictionary again.
HEADERS = f"{__package__}.headers"
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger(f"{__package__}.access")
errors = logging.getLogger(f"{__package__}.errors")


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        entry |= getattr(record, "fields", {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str) -> None:
    """Send every log line (uvicorn's too) to stderr, as JSON or as plain text."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
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
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
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
        self.shed = Counter(
            "requests_shed",
            "Requests refused with 503 because the event loop ran late (overload)",
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "model_loaded", "1 once a model is loaded and answering, else 0", registry=self.registry
        )
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
        for result in ("ok", "error", "dropped"):
            self.shadow.labels(result)
        self._outcomes: dict[str, Any] = {}
        self._requests: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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


class AccessLog:
    """One line per request: method, path, status, duration and request id.

    In JSON, lines are encoded here in the shape of `JsonFormatter` and written to stderr in
    batches: the logging module's record and formatter cost ~30 us a line on a small machine,
    and a write call per line as much again, a sizeable share of a 1 ms request. `run()`
    writes what is pending every `flush_seconds` (and when it stops); like nginx's buffered
    access log, a killed process loses at most that much. Text lines go through logging.
    """

    _encode = json.JSONEncoder(separators=(",", ":")).encode

    def __init__(self, log_format: str, flush_seconds: float = 0.05, max_pending: int = 512):
        self.json = log_format == "json"
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self._pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def __call__(self, method: str, path: str, status: int, seconds: float, request_id: str):
        duration_ms = round(seconds * 1000, 3)
        if not self.json:
            access_log.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={"fields": {"status": status, "duration_ms": duration_ms}},
            )
            return
        now = int(time.time())
        if now != self._second:  # the time text changes once a second
            self._second, self._stamp = now, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        entry = {
            "time": self._stamp,
            "level": "info",
            "logger": access_log.name,
            "message": f"{method} {path} {status}",
            "request_id": request_id,
            "status": status,
            "duration_ms": duration_ms,
        }
        self._pending.append(self._encode(entry))
        if len(self._pending) >= self.max_pending:  # bounded even when `run()` is not running
            self.flush()

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()

    async def run(self) -> None:
        """Write the pending lines every `flush_seconds`; the last ones when cancelled."""
        try:
            while True:
                await asyncio.sleep(self.flush_seconds)
                self.flush()
        finally:
            self.flush()


# Probes and scrapes are never shed: an overloaded replica is alive, and must be seen.
UNSHED_PATHS = frozenset({"/health", "/ready", "/metrics"})


class LoadShedder:
    """Tells when work waits in the event loop's queue longer than `max_delay` seconds.

    A heartbeat asks to run every `interval` seconds. While it is overdue, everything queued
    before it is waiting too: a request that finds it overdue by more than `max_delay` gets an
    immediate 503 with Retry-After (cheap: no parsing, no model), so the backlog drains and the
    requests admitted keep a bounded latency instead of all of them slowing down together.
    One long request (a big batch) does not trip it: the heartbeat runs as soon as the loop is
    free, before the next request.
    """

    def __init__(self, max_delay: float, interval: float = 0.01) -> None:
        self.max_delay = max_delay
        self.interval = interval
        self._due = math.inf  # no heartbeat yet (the app's lifespan starts it)
        self._clock = time.monotonic  # the event loop's clock

    @property
    def overloaded(self) -> bool:
        return self._clock() - self._due > self.max_delay

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        try:
            while True:
                self._due = loop.time() + self.interval
                await asyncio.sleep(self.interval)
        finally:
            self._due = math.inf


class RequestGuard:
    """Request id, load shedding, body-size limit, time-out, metrics, access log and a bare
    500 around every request."""

    def __init__(
        self,
        app,
        metrics: Metrics,
        max_body_bytes: int,
        access: AccessLog | None,
        shedder: LoadShedder | None = None,
        timeout: float | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.access = access
        self.shedder = shedder
        self.timeout = timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = scope[HEADERS] = dict(scope["headers"])
        sent_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = sent_id if VALID_REQUEST_ID.match(sent_id) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        status = 500
        response_started = False

        async def send_with_id(message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge
            return message

        try:
            if (
                self.shedder is not None
                and self.shedder.overloaded
                and scope["path"] not in UNSHED_PATHS
            ):
                self.metrics.shed.inc()
                detail = "the service is overloaded: retry in a second"
                await _send_json(send_with_id, 503, {"detail": detail}, retry_after=1)
                return
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                raise BodyTooLarge
            async with asyncio.timeout(self.timeout):
                await self.app(scope, limited_receive, send_with_id)
        except TimeoutError:
            if response_started:
                raise
            detail = f"the request took longer than {self.timeout:g} s"
            await _send_json(send_with_id, 504, {"detail": detail, "request_id": request_id})
        except BodyTooLarge:
            if response_started:
                raise
            detail = f"the request body exceeds {self.max_body_bytes} bytes"
            await _send_json(send_with_id, 413, {"detail": detail})
        except Exception:
            if response_started:
                raise
            # The trace goes to the log; the client learns only which request failed.
            errors.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await _send_json(
                send_with_id, 500, {"detail": "internal error", "request_id": request_id}
            )
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            self.metrics.record_request(route, scope["method"], status, elapsed)
            if self.access is not None:
                self.access(scope["method"], scope["path"], status, elapsed, request_id)
            REQUEST_ID.reset(token)


class BodyTooLarge(Exception):
    """Raised while reading a body past the configured limit."""


async def _send_json(
    send, status: int, payload: dict[str, Any], retry_after: int | None = None
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
        score = GaugeMetricFamily(
            "drift_feature_score",
            "Drift statistic of each feature (PSI for numbers, Jensen-Shannon for categories)",
            labels=["feature", "statistic"],
        )
        detected = GaugeMetricFamily(
            "drift_feature_detected", "1 when a feature drifted", labels=["feature"]
        )
        for name, feature in result["features"].items():
            score.add_metric([name, feature["statistic"]], feature["score"])
            detected.add_metric([name], float(feature["drifted"]))
        yield score
        yield detected
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
