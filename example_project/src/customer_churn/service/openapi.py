"""The OpenAPI document: FastAPI's, plus what FastAPI cannot see.

- the Record schema that /predict's body refers to: the route reads and validates its body
  itself (one pass of pydantic-core), so FastAPI does not see the model;
- the largest list of records, which is a setting (`max_batch_size`);
- the answers the guard middleware (guard.py) gives before any route runs: 413 for a body
  over the size limit and 504 after the time limit on every path, 503 when it sheds load on
  every path but the probes and /metrics.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .guard import UNSHED_PATHS
from .schemas import ERRORS, Problem, Record

REF = "#/components/schemas/{model}"


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, completed (see the module's docstring); built once per app."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Record"] = Record.model_json_schema(ref_template=REF)
        schemas.setdefault("Problem", Problem.model_json_schema(ref_template=REF))
        for path, operations in document["paths"].items():
            statuses = (413, 504) if path in UNSHED_PATHS else (413, 503, 504)
            for operation in operations.values():
                for status in statuses:
                    operation["responses"].setdefault(str(status), _problem(status))
        body = document["paths"]["/predict"]["post"]["requestBody"]
        body["content"] = copy.deepcopy(body["content"])  # not the route's own dictionary
        (_, batch) = body["content"]["application/json"]["schema"]["anyOf"]
        batch["maxItems"] = app.state.settings.max_batch_size
        app.openapi_schema = document
    return app.openapi_schema


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": ERRORS[status],
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }
