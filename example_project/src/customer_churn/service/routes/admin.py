"""POST /admin/reload: replace a model being served, behind the API key."""

from typing import Any

from fastapi import APIRouter, HTTPException

from ..deps import ModelsDep, RequireAdmin, SettingsDep
from ..holder import ReloadRefused
from ..rollout import CHALLENGER, CHAMPION
from ..schemas import ReloadRequest, problems

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[RequireAdmin])


@router.post("/reload", responses=problems(400, 401, 403, 409))
async def reload(
    models: ModelsDep, settings: SettingsDep, body: ReloadRequest | None = None
) -> dict[str, Any]:
    """Load a model and swap it in only if it loads and answers; else keep the current one."""
    variant = body.variant if body else CHAMPION
    if variant == CHALLENGER and settings.rollout_mode == "single":
        raise HTTPException(409, "no challenger in rollout_mode 'single': nothing to replace")
    configured = settings.model_source if variant == CHAMPION else settings.challenger_uri
    source = (body.model_uri if body else None) or configured
    try:
        previous, candidate = await models.reload(source, variant)
    except ReloadRefused as error:
        raise HTTPException(409, str(error)) from None
    return {
        "variant": variant,
        "previous_version": previous.version if previous else None,
        "version": candidate.version,
        "backend": candidate.backend,
    }
