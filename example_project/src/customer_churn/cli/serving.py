"""The `serve` command: the prediction service over HTTP."""

from typing import Annotated

import typer

from .shared import load_settings


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
    configure_logging(settings.log_format)
    # Fail here, clearly, before binding a port; a registry URI pulled before is served at once.
    model = load(settings.model_source, settings, use_cache=True)
    uvicorn.run(
        create_app(settings, model),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,  # the service writes its own access log, with request ids
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )
