"""The HTTP service: validates requests against the feature contract and answers predictions.

It imports neither pandas nor MLflow nor training code: a request becomes arrays and goes
straight to the exported model (ONNX Runtime, or the exact pipeline as a fallback).
"""

import asyncio
import json
import logging
import math
import re
import secrets
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from starlette.concurrency import run_in_threadpool

from . import __version__
from .contract import CONTRACT
from .dashboard import add_dashboard
from .errors import ModelLoadError
from .fields import Categorical
from .observability import (
    HEADERS,
    REQUEST_ID,
    AccessLog,
    DriftCollector,
    LoadShedder,
    Metrics,
    RequestGuard,
)
from .prediction_log import PredictionLog
from .rollout import CHALLENGER, CHAMPION, VARIANTS, Rollout
from .runtime import REGISTRY_SCHEMES, ServingModel, load_serving_model
from .settings import Settings, get_settings

log = logging.getLogger(__name__)


def example_record() -> dict[str, Any]:
    """A valid record: the middle of each numeric range, the first category of each feature."""
    example: dict[str, Any] = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            example[feature.name] = feature.categories[0]
        else:
            low, high = feature.minimum or 0, feature.maximum if feature.maximum is not None else 1
            middle = (low + high) / 2
            example[feature.name] = int(middle) if feature.integer else round(middle, 2)
    return example


def build_record_model() -> type[BaseModel]:
    """The strict request model of one record, derived from the contract.

    Types, ranges and categories come from the contract; unknown fields, NaN and infinity
    are refused.
    """
    fields: dict[str, Any] = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            annotation: Any = Literal[feature.categories]
            constraints: dict[str, Any] = {}
        else:
            annotation = int if feature.integer else float
            constraints = {"ge": feature.minimum, "le": feature.maximum, "allow_inf_nan": False}
        default = None if feature.nullable else ...
        if feature.nullable:
            annotation = annotation | None
        fields[feature.name] = (
            annotation,
            Field(default, description=feature.description, **constraints),
        )
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example_record()]})
    return create_model("Record", __config__=config, **fields)


Record = build_record_model()
# The body of POST /predict, parsed and validated in one pass by pydantic-core (no json.loads).
Payload = TypeAdapter(Record | list[Record])
PAYLOAD_SCHEMA = {
    "description": "One record or a list of records",
    "anyOf": [
        {"$ref": "#/components/schemas/Record"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
    ],
}


def parse_records(body: bytes) -> list[Any]:
    """The records of a /predict body; a 422 naming each field at fault otherwise."""
    try:
        parsed = Payload.validate_json(body)
    except ValidationError as error:
        try:
            sent = json.loads(body)
        except ValueError:
            sent = None
        errors = [e | {"loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors, body=sent) from None
    return parsed if isinstance(parsed, list) else [parsed]


class Prediction(BaseModel):
    prediction: int = Field(description="Predicted class of the target")
    probability: float = Field(description="Probability of the positive class")


class PredictionResponse(BaseModel):
    model_version: str | None
    variant: Literal[VARIANTS] = Field(
        description="The model that answered: the champion, or the challenger of a split rollout"
    )
    request_id: str
    predictions: list[Prediction]
    explanations: list[dict[str, Any]] | None = Field(
        None, description="With ?explain=true: each feature's contribution (see explain.py)"
    )


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_uri: str | None = Field(
        None, description="Export folder or models:/ URI; default: the configured one"
    )
    variant: Literal[VARIANTS] = Field(CHAMPION, description="Which of the two models to replace")


def fetch(source: str, settings: Settings) -> Path:
    """A local export folder for `source`; registry URIs are pulled by a separate process,
    so that this one never imports MLflow."""
    if not source.startswith(REGISTRY_SCHEMES):
        return Path(source)
    destination = settings.models_dir / "registry" / re.sub(r"[^A-Za-z0-9_.-]+", "_", source)
    command = [sys.executable, "-m", __package__, "pull", source, str(destination)]
    # This interpreter and package; the URI is one argument, never seen by a shell.
    result = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise ModelLoadError(f"cannot pull '{source}': {lines[-1]}")
    return destination


def load(source: str, settings: Settings) -> ServingModel:
    """Fetch and load a model, then prove it answers the contract's example record."""
    model = load_serving_model(fetch(source, settings), settings.serving_backend)
    model.source = source
    model.predict_records([example_record()])
    return model


def outcomes(model: ServingModel, predictions) -> list[str]:
    """The label of each prediction in the `predictions` metric: the class."""
    return [str(label) for label in predictions]


def _errors_of_the_sent_shape(error: RequestValidationError) -> list[dict[str, Any]]:
    """Errors of `/predict` for the shape actually sent (one record or a list), not both.

    Pydantic reports a failed `Record | list[Record]` once per union member; a client that
    sent one record needs to hear about its fields, not that it is not a list.
    """
    member = "list[Record]" if isinstance(error.body, list) else "Record"
    errors = []
    for item in error.errors():
        location = tuple(item["loc"])
        if location[:1] == ("body",) and location[1:2] in {("Record",), ("list[Record]",)}:
            if location[1] != member:
                continue
            item = item | {"loc": ("body", *location[2:])}
        if isinstance(item.get("input"), float) and not math.isfinite(item["input"]):
            item = item | {"input": str(item["input"])}  # NaN and infinity are not JSON
        errors.append(item)
    return errors


class FastPredict:
    """POST /predict without a query string, answered before FastAPI's routing when the
    request is valid (about a third of the service's time per request, measured on a small
    machine). Every other request, and one that the fast path would refuse, goes on to the
    app with its body, and the route answers it, errors included.

    It sits inside `RequestGuard`, so request ids, load shedding, the body-size limit, the
    time-out, metrics and the access log apply to both paths alike.
    """

    def __init__(self, app, answer) -> None:
        self.app = app
        self.answer = answer  # (headers, body, started) -> the JSON answer, or None
        self.route = None

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/predict"
            or scope["method"] != "POST"
            or scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        messages = [await receive()]
        while messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False):
            messages.append(await receive())
        answer = None
        if messages[-1]["type"] == "http.request":  # else the client left: the app sees it
            body = b"".join(message.get("body", b"") for message in messages)
            headers = scope.get(HEADERS) or dict(scope["headers"])
            answer = self.answer(headers, body, started)
        if answer is None:

            async def replay():
                return messages.pop(0) if messages else await receive()

            await self.app(scope, replay, send)
            return
        if self.route is None:  # the route in the metrics' labels, as the router would set
            routes = scope["app"].routes
            self.route = next(r for r in routes if getattr(r, "path", "") == "/predict")
        scope["route"] = self.route
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def create_app(
    settings: Settings | None = None,
    model: ServingModel | None = None,
    challenger: ServingModel | None = None,
) -> FastAPI:
    """The FastAPI application. Without `model`, the configured one loads in the background
    and `/ready` answers 503 until it is in place. In a rollout mode, the challenger loads in
    the background too unless given; until it does (or if it cannot), the champion answers."""
    settings = settings or get_settings()
    metrics = Metrics()
    rollout = None  # single mode: the hot path checks this and nothing else
    if settings.rollout_mode != "single":
        rollout = Rollout(
            settings.rollout_mode,
            settings.rollout_share,
            settings.rollout_key_header,
            metrics,
            outcomes,
            settings.shadow_queue,
        )
    metrics.registry.register(DriftCollector(settings.monitoring_dir / "drift.json"))
    reload_lock = asyncio.Lock()
    shedder = LoadShedder(settings.max_queue_delay_ms / 1000)
    access = AccessLog(settings.log_format) if settings.access_log else None

    def install(loaded: ServingModel, variant: str = CHAMPION) -> None:
        if variant == CHAMPION:
            app.state.model = loaded
            metrics.model_loaded.set(1)
        else:
            app.state.challenger = loaded
            metrics.challenger_loaded.set(1)
        manifest = loaded.manifest
        metrics.model.labels(variant).info(
            {
                "name": str(manifest.get("name")),
                "version": str(manifest.get("version")),
                "backend": loaded.backend,
            }
        )
        log.info(
            "serving %s: %s version %s from %s with %s%s",
            variant,
            manifest.get("name"),
            manifest.get("version"),
            loaded.folder,
            loaded.backend,
            f" ({loaded.reason})" if loaded.reason else "",
        )

    def load_in_background(champion: bool, challenger: bool) -> None:
        if champion:
            try:
                install(load(settings.model_source, settings))
            except Exception as error:
                app.state.load_error = str(error)
                log.error("the model could not be loaded: %s", error)
        if challenger:
            try:
                install(load(settings.challenger_uri, settings), CHALLENGER)
            except Exception as error:  # the champion answers alone meanwhile
                app.state.challenger_error = str(error)
                log.error("the challenger could not be loaded, the champion answers: %s", error)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.prediction_log:
            app.state.prediction_log = PredictionLog(
                settings.prediction_log_dir,
                sample_rate=settings.prediction_log_sample_rate,
                max_queue=settings.prediction_log_queue,
                max_bytes=settings.prediction_log_max_bytes,
                keep_files=settings.prediction_log_keep_files,
                on_drop=lambda reason, count: metrics.dropped.labels(reason).inc(count),
                on_write=metrics.logged.inc,
            )
        load_challenger = rollout is not None and challenger is None
        if model is None or load_challenger:
            threading.Thread(
                target=load_in_background, args=(model is None, load_challenger), daemon=True
            ).start()
        if rollout is not None:
            rollout.start(app.state.prediction_log)
        tasks = [asyncio.create_task(shedder.watch())]
        if access is not None:
            tasks.append(asyncio.create_task(access.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # the last access lines out
            if rollout is not None:
                rollout.close()  # the shadow scores queued are logged too
            if app.state.prediction_log is not None:
                app.state.prediction_log.close()  # what is queued is written before exit

    app = FastAPI(
        title="Customer Churn",
        description="Predicts which customers are about to cancel their subscription.",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.model = None
    app.state.challenger = None
    app.state.challenger_error = None
    app.state.load_error = None
    app.state.prediction_log = None
    if model is not None:
        install(model)
    if challenger is not None and rollout is not None:
        install(challenger, CHALLENGER)

    def answer(loaded: ServingModel, inputs: list[dict[str, Any]], started: float, headers) -> dict:
        """The answer to valid records: predictions, counted and logged (both paths use it).
        `headers` (the request's) are read in a rollout only, for the key of the split."""
        request_id = REQUEST_ID.get()
        variant = CHAMPION
        if rollout is None:
            predictions, probabilities = loaded.predict_records(inputs)
            labels, shares = predictions.tolist(), probabilities.tolist()  # numbers of Python's
            for label in labels:
                metrics.count_prediction(str(label))
        else:
            loaded, variant, predictions, probabilities = rollout.score(
                loaded, app.state.challenger, headers, request_id, inputs
            )
            labels, shares = predictions.tolist(), probabilities.tolist()
        answers = [
            {"prediction": int(p), "probability": q} for p, q in zip(labels, shares, strict=True)
        ]
        prediction_log = app.state.prediction_log
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

    def fast_answer(headers: dict[bytes, bytes], body: bytes, started: float) -> bytes | None:
        """The answer to a request the route would accept as it is, else None."""
        loaded = app.state.model
        if loaded is None:
            return None
        if settings.api_key is not None and not secrets.compare_digest(
            headers.get(b"x-api-key", b""), settings.api_key.get_secret_value().encode()
        ):
            return None
        try:
            records = parse_records(body)
        except RequestValidationError:
            return None
        if not 0 < len(records) <= settings.max_batch_size:
            return None
        payload = answer(loaded, [r.__dict__ for r in records], started, headers)
        return orjson.dumps(payload)

    app.add_middleware(FastPredict, answer=fast_answer)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-api-key", "x-request-id"],
        )
    app.add_middleware(
        RequestGuard,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        access=access,
        shedder=shedder,
        timeout=settings.request_timeout,
    )

    # Checks are `async def`: FastAPI would run plain functions in a thread per request.
    async def serving_model(request: Request) -> ServingModel:
        loaded = request.app.state.model
        if loaded is None:
            raise HTTPException(503, "the model is not loaded yet", headers={"Retry-After": "1"})
        return loaded

    async def require_key(request: Request) -> None:
        """With an API key configured, a request must carry it (compared in constant time)."""
        if settings.api_key is None:
            return
        sent = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(sent.encode(), settings.api_key.get_secret_value().encode()):
            raise HTTPException(401, "a valid X-API-Key header is required")

    async def require_admin(request: Request) -> None:
        if settings.api_key is None:
            raise HTTPException(403, "admin routes are disabled: configure an API key to use them")
        await require_key(request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        """422 naming each field at fault, in the shape the client sent."""
        cleaned = RequestValidationError(_errors_of_the_sent_shape(error), body=error.body)
        return await request_validation_exception_handler(request, cleaned)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        """Readiness: 200 once a model is loaded, 503 before (or if it failed to load)."""
        loaded = request.app.state.model
        if loaded is None:
            reason = request.app.state.load_error or "loading"
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": loaded.version})

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Prometheus exposition of requests, latency, predictions and the model version."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/model")
    async def model_info(loaded: Annotated[ServingModel, Depends(serving_model)]) -> dict[str, Any]:
        """What is being served: name, version, alias, metrics, features, provenance, backend."""
        manifest = loaded.manifest
        source = loaded.source or str(loaded.folder)
        return {
            "name": manifest.get("name"),
            "version": manifest.get("version"),
            "alias": source.split("@", 1)[1] if "@" in source else None,
            "source": source,
            "run_id": manifest.get("run_id"),
            "trained_at": manifest.get("trained_at"),
            "git_commit": manifest.get("git_commit"),
            "problem_type": CONTRACT.target.kind,
            "features": CONTRACT.feature_names,
            "metrics": manifest.get("metrics", {}),
            "backend": loaded.backend,
            "backend_reason": loaded.reason or None,
            "onnx": manifest.get("onnx"),
        }

    @app.post(
        "/predict",
        response_model=PredictionResponse,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PAYLOAD_SCHEMA}},
            }
        },
        responses={413: {"description": "Too many records, or a body over the size limit"}},
    )
    async def predict(
        request: Request,
        explain: Annotated[bool, Query(description="Add each feature's contribution")] = False,
    ) -> Response:
        """Predict for one record or a list of records (at most `max_batch_size`).

        Valid requests without a query string take `FastPredict`, which answers before
        FastAPI's routing and gives this route every other request: the checks here decide
        the error a client sees. Checks are inline rather than dependencies, the body is
        parsed and validated by pydantic-core in one pass, and the answer is written as JSON
        directly rather than validated again through the response model.
        """
        started = time.perf_counter()
        await require_key(request)
        loaded = await serving_model(request)
        records = parse_records(await request.body())
        if not records:
            raise HTTPException(422, "the request holds no records")
        if len(records) > settings.max_batch_size:
            raise HTTPException(
                413,
                f"{len(records)} records exceed the limit of {settings.max_batch_size} per request",
            )
        inputs = [r.__dict__ for r in records]
        payload = answer(loaded, inputs, started, request.headers)
        if explain:  # off the fast path: shap and the exact pipeline load on the first ask
            from .explain import ExplanationUnavailable, explain_records

            try:
                payload["explanations"] = await run_in_threadpool(explain_records, loaded, inputs)
            except ExplanationUnavailable as error:
                raise HTTPException(501, str(error)) from None
        return Response(orjson.dumps(payload), media_type="application/json")

    def openapi() -> dict[str, Any]:
        """FastAPI's document, plus the Record schema that /predict's body refers to."""
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Record"] = Record.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi

    @app.post("/admin/reload", dependencies=[Depends(require_admin)])
    async def reload(request: Request, body: ReloadRequest | None = None) -> dict[str, Any]:
        """Load a model and swap it in only if it loads and answers; else keep the current one."""
        variant = body.variant if body else CHAMPION
        if variant == CHALLENGER and rollout is None:
            raise HTTPException(409, "no challenger in rollout_mode 'single': nothing to replace")
        configured = settings.model_source if variant == CHAMPION else settings.challenger_uri
        source = (body.model_uri if body else None) or configured
        async with reload_lock:
            previous = getattr(request.app.state, "model" if variant == CHAMPION else variant)
            try:
                candidate = await run_in_threadpool(load, source, settings)
            except Exception as error:
                log.error("reload of %s refused: %s", source, error)
                raise HTTPException(
                    409,
                    f"the model at '{source}' was not loaded ({error}); "
                    f"still serving version {previous.version if previous else None}",
                ) from None
            install(candidate, variant)
        return {
            "variant": variant,
            "previous_version": previous.version if previous else None,
            "version": candidate.version,
            "backend": candidate.backend,
        }

    add_dashboard(app, settings, metrics, require_key, example_record())

    # The router tries routes in order: the hot one first.
    app.router.routes.sort(key=lambda route: getattr(route, "path", "") != "/predict")
    return app
