"""The OpenAPI document: FastAPI's, plus the Record schema that /predict's body refers to.

The route reads and validates its body itself (one pass of pydantic-core), so FastAPI does not
see the model and would leave the schema out.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .schemas import Record


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the Record schema that /predict's body refers to."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Record"] = Record.model_json_schema(ref_template="#/components/schemas/{model}")
        app.openapi_schema = document
    return app.openapi_schema
