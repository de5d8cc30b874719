"""POST /predict: predictions for one record or a list of records, with explanations on request."""

import time
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..deps import require_key, serving_model
from ..schemas import PAYLOAD_SCHEMA, PredictionResponse, parse_records, problems

router = APIRouter(tags=["predictions"])


@router.post(
    "/predict",
    response_model=PredictionResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PAYLOAD_SCHEMA}},
        }
    },
    responses=problems(401, 413, 501, 503),
)
async def predict(
    request: Request,
    explain: Annotated[bool, Query(description="Add each feature's contribution")] = False,
) -> Response:
    """Predict for one record or a list of records (at most `max_batch_size`).

    Valid requests without a query string take `FastPredict`, which answers before
    FastAPI's routing and gives this route every other request: the checks here decide
    the error a client sees. Checks are inline rather than dependencies, the body is
    parsed and validated by pydantic-core in one pass, and the answer is written as JSON
    directly rather than validated again through the response model.
    """
    started = time.perf_counter()
    await require_key(request)
    loaded = await serving_model(request)
    records = parse_records(await request.body())
    limit = request.app.state.settings.max_batch_size
    if len(records) > limit:
        raise HTTPException(413, f"{len(records)} records exceed the limit of {limit} per request")
    inputs = [r.__dict__ for r in records]
    payload = request.app.state.scorer.answer(loaded, inputs, started, request.headers)
    if explain:  # off the fast path: shap and the exact pipeline load on the first ask
        from ...modeling.explain import ExplanationUnavailable
        from ..explanations import explain_records

        try:
            payload["explanations"] = await run_in_threadpool(explain_records, loaded, inputs)
        except ExplanationUnavailable as error:
            raise HTTPException(501, str(error)) from None
    return Response(orjson.dumps(payload), media_type="application/json")
