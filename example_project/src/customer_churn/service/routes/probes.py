"""The probes an orchestrator polls: liveness at /health, readiness at /ready."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import ModelsDep
from ..schemas import NotReady

router = APIRouter(tags=["probes"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": NotReady, "description": "No model loaded"}})
async def ready(models: ModelsDep) -> JSONResponse:
    """Readiness: 200 once a model is loaded, 503 before (or if it failed to load)."""
    loaded = models.champion
    if loaded is None:
        reason = models.load_error or "loading"
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "model_version": loaded.version})
