"""What the routes share, as dependencies: the settings, the models being served, the metrics,
the scorer and the API-key checks.

Each reads what `create_app` put on the app's state. They are `async def`: FastAPI would run a
plain function in a thread per request.
"""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..registry.artifact import ServingModel
from ..settings import Settings
from .holder import ModelHolder
from .metrics import Metrics
from .scoring import Scorer


async def settings_of(request: Request) -> Settings:
    return request.app.state.settings


async def models_of(request: Request) -> ModelHolder:
    return request.app.state.models


async def metrics_of(request: Request) -> Metrics:
    return request.app.state.metrics


async def scorer_of(request: Request) -> Scorer:
    return request.app.state.scorer


async def serving_model(request: Request) -> ServingModel:
    """The champion; 503 until it is loaded."""
    loaded = request.app.state.models.champion
    if loaded is None:
        raise HTTPException(503, "the model is not loaded yet", headers={"Retry-After": "1"})
    return loaded


async def require_key(request: Request) -> None:
    """With an API key configured, a request must carry it (compared in constant time)."""
    api_key = request.app.state.settings.api_key
    if api_key is None:
        return
    sent = request.headers.get("x-api-key", "")
    if not secrets.compare_digest(sent.encode(), api_key.get_secret_value().encode()):
        raise HTTPException(401, "a valid X-API-Key header is required")


async def require_admin(request: Request) -> None:
    """Admin routes need the API key, and are off while none is configured."""
    if request.app.state.settings.api_key is None:
        raise HTTPException(403, "admin routes are disabled: configure an API key to use them")
    await require_key(request)


SettingsDep = Annotated[Settings, Depends(settings_of)]
ModelsDep = Annotated[ModelHolder, Depends(models_of)]
MetricsDep = Annotated[Metrics, Depends(metrics_of)]
ScorerDep = Annotated[Scorer, Depends(scorer_of)]
ServingModelDep = Annotated[ServingModel, Depends(serving_model)]
# For a route's `dependencies=[...]`: checks that return nothing.
RequireKey = Depends(require_key)
RequireAdmin = Depends(require_admin)
