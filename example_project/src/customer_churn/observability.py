"""What the service tells operators: Prometheus metrics, JSON logs, request ids, body limits.

One pure-ASGI middleware does the per-request work (a few microseconds): it stamps a
request id, refuses oversized bodies, and records the request in metrics and the access log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
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
            "Predictions served, by predicted class or value bucket",
            ["outcome"],
            registry=self.registry,
        )
        self.model = Info("model", "The model being served", registry=self.registry)
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
        """Count one prediction; label lookups are cached, this runs once per record."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.predictions.labels(outcome)
        child.inc()


class RequestGuard:
    """Request id, body-size limit, metrics, access log and a bare 500 around every request."""

    def __init__(self, app, metrics: Metrics, max_body_bytes: int, access: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.access = access

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
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
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                raise BodyTooLarge
            await self.app(scope, limited_receive, send_with_id)
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
            if self.access:
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={"fields": {"status": status, "duration_ms": round(elapsed * 1000, 3)}},
                )
            REQUEST_ID.reset(token)


class BodyTooLarge(Exception):
    """Raised while reading a body past the configured limit."""


async def _send_json(send, status: int, payload: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
