"""The request and response models of the API, derived from the feature contract."""

import json
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from ..contract import CONTRACT
from ..fields import Categorical
from .rollout import CHAMPION, VARIANTS


def example_record() -> dict[str, Any]:
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
    """The strict request model of one record, derived from the contract.

    Types, ranges and categories come from the contract; unknown fields, NaN and infinity
    are refused.
    """
    fields: dict[str, Any] = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            annotation: Any = Literal[feature.categories]
            constraints: dict[str, Any] = {}
        else:
            annotation = int if feature.integer else float
            constraints = {"ge": feature.minimum, "le": feature.maximum, "allow_inf_nan": False}
        default = None if feature.nullable else ...
        if feature.nullable:
            annotation = annotation | None
        fields[feature.name] = (
            annotation,
            Field(default, description=feature.description, **constraints),
        )
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example_record()]})
    return create_model("Record", __config__=config, **fields)


Record = build_record_model()
# The body of POST /predict, parsed and validated in one pass by pydantic-core (no json.loads).
Payload = TypeAdapter(Record | list[Record])
PAYLOAD_SCHEMA = {
    "description": "One record or a list of records",
    "anyOf": [
        {"$ref": "#/components/schemas/Record"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
    ],
}


def parse_records(body: bytes) -> list[Any]:
    """The records of a /predict body; a 422 naming each field at fault otherwise."""
    try:
        parsed = Payload.validate_json(body)
    except ValidationError as error:
        try:
            sent = json.loads(body)
        except ValueError:
            sent = None
        errors = [e | {"loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors, body=sent) from None
    return parsed if isinstance(parsed, list) else [parsed]


class Prediction(BaseModel):
    prediction: Literal[tuple(CONTRACT.target.labels)] = Field(  # type: ignore[valid-type]
        description="Predicted class of the target"
    )
    probability: float = Field(
        description=(
            "Probability of the predicted class"
            if CONTRACT.target.multiclass
            else f"Probability of the positive class ({CONTRACT.target.positive!r})"
        )
    )
    probabilities: dict[str, float] = Field(
        description="Probability of every class, keyed by the class label (as text)"
    )


class PredictionResponse(BaseModel):
    model_version: str | None
    variant: Literal[VARIANTS] = Field(
        description="The model that answered: the champion, or the challenger of a split rollout"
    )
    request_id: str
    predictions: list[Prediction]
    explanations: list[dict[str, Any]] | None = Field(
        None, description="With ?explain=true: each feature's contribution (see explain.py)"
    )


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_uri: str | None = Field(
        None, description="Export folder or models:/ URI; default: the configured one"
    )
    variant: Literal[VARIANTS] = Field(CHAMPION, description="Which of the two models to replace")
