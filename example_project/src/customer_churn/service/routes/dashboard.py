"""The dashboard's routes: the page at /dashboard and what it shows at /dashboard/data."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..dashboard import page, summary
from ..deps import MetricsDep, ModelsDep, RequireKey, ScorerDep, SettingsDep
from ..schemas import problems

router = APIRouter(prefix="/dashboard", tags=["dashboard"])


@router.get("", include_in_schema=False)
async def dashboard() -> HTMLResponse:
    """The page; it holds no data, so it needs no key (its requests do)."""
    return HTMLResponse(page())


@router.get("/data", dependencies=[RequireKey], responses=problems(401))
async def dashboard_data(
    request: Request,
    models: ModelsDep,
    scorer: ScorerDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Everything the dashboard shows, in one answer, with the last minutes of `/predict`
    (the app's `Timeline`) for its charts."""
    return summary(models, scorer, settings, metrics, request.app.state.timeline)
