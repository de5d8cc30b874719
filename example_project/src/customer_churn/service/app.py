"""The HTTP service, assembled: routes, middleware, error handlers and the lifespan.

It imports neither pandas nor MLflow nor training code: a request becomes arrays and goes
straight to the exported model (ONNX Runtime, or the exact pipeline as a fallback).
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from .. import __version__
from ..registry.artifact import ServingModel
from ..settings import Settings, get_settings
from .exception_handlers import EXCEPTION_HANDLERS
from .fast_path import FastPredict
from .guard import LoadShedder, RequestGuard
from .holder import ModelHolder, load
from .logs import AccessLog
from .metrics import DriftCollector, Metrics
from .openapi import openapi_document
from .rollout import CHALLENGER
from .routes import ROUTERS
from .schemas import Record, example_record
from .scoring import Scorer
from .timeline import Timeline

# What other code imports from here: the factory, the model loader and the request model.
__all__ = ["Record", "create_app", "example_record", "load"]


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
    metrics.registry.register(DriftCollector(settings.monitoring_dir / "drift.json"))
    models = ModelHolder(settings, metrics)
    scorer = Scorer(settings, models, metrics)
    shedder = LoadShedder(settings.max_queue_delay_ms / 1000)
    access = AccessLog(settings.log_format) if settings.access_log else None
    background = [shedder.watch] + ([access.run] if access else [])
    timeline = Timeline(metrics)  # the dashboard's charts of the last minutes
    background.append(timeline.run)
    app = Service(
        title="Customer Churn",
        description="Predicts which customers are about to cancel their subscription.",
        version=__version__,
        lifespan=lifespan(models, scorer, background),
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings, app.state.metrics = settings, metrics
    app.state.models, app.state.scorer = models, scorer
    app.state.timeline = timeline
    if model is not None:
        models.install(model)
    if challenger is not None and scorer.rollout is not None:
        models.install(challenger, CHALLENGER)
    for router in ROUTERS:
        app.include_router(router)
    app.front = front_of(app, settings, models, scorer, metrics, shedder, access)
    app.openapi = partial(openapi_document, app)
    return app


class Service(FastAPI):
    """FastAPI with the request guard and the fast path of /predict in front of it.

    Every request meets `front` first (see `front_of`); what the fast path does not answer
    goes on to FastAPI's own handling. So a valid prediction skips FastAPI's per-request work
    around the router: its telemetry check (environment and provider lookups), its error and
    body-limit middleware and Starlette's entry, about 6 us of a request measured in the
    served process. (FastAPI's native OpenTelemetry spans, when a provider is set up,
    then cover the other requests only.)
    """

    front: Callable[..., Coroutine]

    async def __call__(self, scope, receive, send) -> None:
        await self.front(scope, receive, send)


def front_of(
    app: Service,
    settings: Settings,
    models: ModelHolder,
    scorer: Scorer,
    metrics: Metrics,
    shedder: LoadShedder,
    access: AccessLog | None,
) -> Callable[..., Coroutine]:
    """From the inside out: FastAPI's own handling, the fast path of /predict, CORS when
    origins are configured, and the request guard around everything (so both paths of
    /predict pass through it)."""
    inner = FastPredict(partial(FastAPI.__call__, app), models, scorer, settings)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        inner = CORSMiddleware(
            inner,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-api-key", "x-request-id"],
        )
    return RequestGuard(
        inner,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        access=access,
        shedder=shedder,
        timeout=settings.request_timeout,
    )


def lifespan(
    models: ModelHolder, scorer: Scorer, background: list[Callable[[], Coroutine]]
) -> Callable:
    """What runs while the service does: the prediction log (its encoding on the loop and
    its writer thread), the rollout's workers, the models that load in the background, and
    the `background` tasks (the load shedder's heartbeat, the access log's writer,
    the dashboard's timeline)."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        scorer.start()
        models.start_loading()
        models.start_refresh()
        tasks = [asyncio.create_task(task()) for task in background]
        if scorer.prediction_log is not None:  # its records are encoded on this loop
            tasks.append(asyncio.create_task(scorer.prediction_log.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # the last access lines out
            scorer.close()  # what the shadow worker and the prediction log hold is written

    return run
