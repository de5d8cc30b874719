"""GET /model: what is being served."""

from typing import Any

from fastapi import APIRouter

from ...contract import CONTRACT
from ..deps import ServingModelDep

router = APIRouter(tags=["model"])


@router.get("/model")
async def model_info(loaded: ServingModelDep) -> dict[str, Any]:
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
