"""The request and response models of the API, derived from the feature contract."""

import json
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

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
    are refused, and so is a value of another JSON type than the document's: `true` or
    `"12"` for a number (`12` is a number, and `12.0` an integer, as JSON Schema has it).
    """
    fields: dict[str, Any] = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            annotation: Any = Literal[feature.categories]
            constraints: dict[str, Any] = {}
        else:
            annotation = int if feature.integer else float
            constraints = {"ge": feature.minimum, "le": feature.maximum, "allow_inf_nan": False}
            # Strict: no bool or text for a float. An integer takes 12.0 (lax), so it is
            # guarded against bool and text by `_integer_not_bool_or_text` instead.
            constraints |= {} if feature.integer else {"strict": True}
        default = None if feature.nullable else ...
        if feature.nullable:
            annotation = annotation | None
        fields[feature.name] = (
            annotation,
            Field(default, description=feature.description, **constraints),
        )
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example_record()]})
    integers = CONTRACT.integers
    validators = (
        {"integers": field_validator(*integers, mode="before")(_integer_not_bool_or_text)}
        if integers
        else {}
    )
    return create_model("Record", __config__=config, __validators__=validators, **fields)


def _integer_not_bool_or_text(cls, value: Any) -> Any:
    """Pydantic's lax int takes `true` and `"12"`; the document says integer. (Its strict int
    refuses 12.0, which JSON Schema counts as an integer.) Measured: 0.8 us more to validate
    one record (4.0 -> 4.8 us), 1 us more a record in a batch of 1,000."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Record = build_record_model()
# The body of POST /predict, parsed and validated in one pass by pydantic-core (no json.loads).
# A list holds at least one record; its upper limit is a setting (max_batch_size): the route
# answers 413 over it, and the document states it (openapi.py).
Payload = TypeAdapter(Record | Annotated[list[Record], Field(min_length=1)])
PAYLOAD_SCHEMA = {
    "description": "One record or a list of records",
    "anyOf": [
        {"$ref": "#/components/schemas/Record"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, "minItems": 1},
    ],
}


class Problem(BaseModel):
    """The body of every error answer but 422's (FastAPI's validation errors)."""

    detail: str = Field(description="What is wrong, in one line")
    request_id: str | None = Field(None, description="The request, in the logs (on a timeout)")


class NotReady(BaseModel):
    """The body of /ready's 503."""

    status: Literal["not ready"]
    reason: str = Field(description="Why no model is loaded, or `loading`")


ERRORS = {
    400: "The body is not JSON",
    401: "The X-API-Key header is missing or wrong",
    403: "Admin routes are disabled: the service has no API key",
    409: "The model cannot be replaced (see detail); the current one keeps serving",
    413: "Too many records, or a body over the size limit",
    501: "Explanations are not available for this model",
    503: "The model is not loaded yet, or the service is overloaded (see Retry-After)",
    504: "The request took longer than the time limit",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for these error statuses, each with the Problem body."""
    return {status: {"model": Problem, "description": ERRORS[status]} for status in statuses}


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
