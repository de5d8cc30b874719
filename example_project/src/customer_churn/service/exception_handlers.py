"""The service's answer to a request that fails validation: 422 naming each field at fault, in
the shape the client sent."""

import math
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response


def errors_of_the_sent_shape(error: RequestValidationError) -> list[dict[str, Any]]:
    """Errors of `/predict` for the shape actually sent (one record or a list), not both.

    Pydantic reports a failed `Record | list[Record]` once per union member; a client that
    sent one record needs to hear about its fields, not that it is not a list.
    """
    member = "list[Record]" if isinstance(error.body, list) else "Record"
    errors = []
    for item in error.errors():
        location = tuple(item["loc"])
        if location[:1] == ("body",) and location[1:2] in {("Record",), ("list[Record]",)}:
            if location[1] != member:
                continue
            item = item | {"loc": ("body", *location[2:])}
        if isinstance(item.get("input"), float) and not math.isfinite(item["input"]):
            item = item | {"input": str(item["input"])}  # NaN and infinity are not JSON
        elif isinstance(item.get("input"), bytes):  # a body that is not JSON, maybe not text
            item = item | {"input": item["input"].decode("utf-8", errors="replace")}
        errors.append(item)
    return errors


async def validation_error(request: Request, error: RequestValidationError) -> Response:
    """422 naming each field at fault, in the shape the client sent."""
    cleaned = RequestValidationError(errors_of_the_sent_shape(error), body=error.body)
    return await request_validation_exception_handler(request, cleaned)


EXCEPTION_HANDLERS = {RequestValidationError: validation_error}
