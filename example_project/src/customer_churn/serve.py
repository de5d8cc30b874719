"""The HTTP service: validates requests against the feature contract and answers predictions."""

from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, create_model

from . import __version__
from .contract import CONTRACT
from .fields import Categorical
from .predict import predict_frame
from .register import LoadedModel, load_model
from .settings import Settings, get_settings


def _example() -> dict[str, Any]:
    """A valid record: the middle of each numeric range, the first category of each feature."""
    example: dict[str, Any] = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            example[feature.name] = feature.categories[0]
        else:
            low, high = feature.minimum or 0, feature.maximum if feature.maximum is not None else 1
            middle = (low + high) / 2
            example[feature.name] = int(middle) if feature.integer else round(middle, 2)
    return example


def build_record_model() -> type[BaseModel]:
    """The request model of one record, derived from the contract; unknown fields are refused."""
    fields: dict[str, Any] = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            annotation: Any = Literal[feature.categories]
            constraints: dict[str, Any] = {}
        else:
            annotation = int if feature.integer else float
            constraints = {"ge": feature.minimum, "le": feature.maximum}
        default = None if feature.nullable else ...
        if feature.nullable:
            annotation = annotation | None
        fields[feature.name] = (
            annotation,
            Field(default, description=feature.description, **constraints),
        )
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_example()]})
    return create_model("Record", __config__=config, **fields)


Record = build_record_model()


class Prediction(BaseModel):
    prediction: int = Field(description="Predicted class of the target")
    probability: float = Field(description="Probability of the positive class")


def _errors_of_the_sent_shape(error: RequestValidationError) -> list[dict[str, Any]]:
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
        errors.append(item)
    return errors


class PredictionResponse(BaseModel):
    model_version: str | None
    predictions: list[Prediction]


def create_app(settings: Settings | None = None, model: LoadedModel | None = None) -> FastAPI:
    """The FastAPI application; loads the configured model at start-up unless one is given."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.model = model or load_model(settings.model_source, settings)
        yield

    app = FastAPI(
        title="Customer Churn",
        description="Predicts which customers are about to cancel their subscription.",
        version=__version__,
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        """422 naming each field at fault, in the shape the client sent."""
        cleaned = RequestValidationError(_errors_of_the_sent_shape(error), body=error.body)
        return await request_validation_exception_handler(request, cleaned)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/model")
    def model_info(request: Request) -> dict[str, Any]:
        """What is being served: name, version, run, source and training metrics."""
        loaded: LoadedModel = request.app.state.model
        return {
            "name": loaded.name,
            "version": loaded.version,
            "run_id": loaded.run_id,
            "uri": loaded.uri,
            "problem_type": CONTRACT.target.kind,
            "features": CONTRACT.feature_names,
            "metrics": loaded.metrics,
        }

    @app.post("/predict")
    def predict(
        request: Request,
        body: Annotated[Record | list[Record], Body(description="One record or a list of records")],
    ) -> PredictionResponse:
        """Predict for one record or a list of records (at most `max_batch_size`)."""
        records = body if isinstance(body, list) else [body]
        if not records:
            raise HTTPException(422, "the request holds no records")
        if len(records) > settings.max_batch_size:
            raise HTTPException(
                413,
                f"{len(records)} records exceed the limit of {settings.max_batch_size} per request",
            )
        loaded: LoadedModel = request.app.state.model
        frame = pd.DataFrame([r.model_dump() for r in records], columns=CONTRACT.feature_names)
        result = predict_frame(loaded, frame)
        return PredictionResponse(
            model_version=loaded.version,
            predictions=[Prediction(**row) for row in result.to_dict(orient="records")],
        )

    return app
