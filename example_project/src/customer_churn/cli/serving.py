"""The `serve` command: the prediction service over HTTP; `smoke`: check a running one."""

import gc
import importlib.util
from typing import Annotated

import typer

from ..errors import ProjectError
from ..settings import ENV_PREFIX
from .shared import console, load_settings


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: settings.host)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port)")] = None,
    model_uri: Annotated[str | None, typer.Option(help="Export folder or models:/ URI")] = None,
) -> None:
    """Serve predictions over HTTP with uvicorn (one worker; scale with replicas)."""
    import uvicorn

    from ..service.app import create_app, load
    from ..service.logs import configure_logging

    settings = load_settings()
    if model_uri:
        settings = settings.model_copy(update={"model_uri": model_uri})
    if settings.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ProjectError(
            f"{ENV_PREFIX}EVENT_LOOP is uvloop, but uvloop is not installed: "
            "add it with `uv sync --group uvloop`"
        )
    configure_logging(settings.log_format)
    # Fail here, clearly, before binding a port; a registry URI pulled before is served at once.
    model = load(settings.model_source, settings, use_cache=True)
    app = create_app(settings, model)
    settle_garbage_collector()
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        # asyncio unless the settings ask for uvloop, even where it is installed: libuv accepts
        # one connection per pass of the loop, so at twice the capacity a new connection waited
        # ~5 s for its first answer (asyncio accepts every pending one: 70 ms at p99), and load
        # shedding cannot see them wait.
        loop=settings.event_loop,
        access_log=False,  # the service writes its own access log, with request ids
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


def settle_garbage_collector() -> None:
    """Leave what start-up loaded out of the collector's scans, and collect young objects
    every 10,000 allocations rather than 700: the modules, the model and the app live as long
    as the process, and scanning them again and again cost the service about 10% of its time
    per request (measured in the served process)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def smoke(
    url: Annotated[str, typer.Option(help="Base URL of the running service")],
    expect_version: Annotated[
        str | None, typer.Option(help="Fail unless /model shows this model version")
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for /ready")] = 60,
) -> None:
    """Smoke-test a running service: ready, one prediction, the model version it serves.

    The last line printed is `model version: N`, for a deployment to read.
    """
    from ..service.smoke import smoke_test

    settings = load_settings()
    key = settings.api_key.get_secret_value() if settings.api_key else None
    result = smoke_test(url, expect_version, key, wait)
    console.print(f"ready after {result.ready_seconds:.1f} s")
    console.print(f"one prediction: {result.prediction}")
    print(f"model version: {result.version}")
