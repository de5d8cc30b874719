"""The request model from the contract: its example is valid, and what breaks the contract is a
422 naming the field."""

import json

import pytest

from customer_churn.contract import CONTRACT
from customer_churn.fields import Numeric
from customer_churn.service.schemas import Record
from tests.service.conftest import BOUNDED, CATEGORICAL

NUMBERS = [f for f in CONTRACT.features if isinstance(f, Numeric)]
INTEGERS = [f for f in NUMBERS if f.integer]


def test_the_openapi_example_is_a_valid_request(client):
    example = Record.model_config["json_schema_extra"]["examples"][0]
    assert client.post("/predict", json=example).status_code == 200


def _error_fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {str(error["loc"][-1]) for error in response.json()["detail"]}


def test_out_of_range_is_422_naming_the_field(client, record):
    record[BOUNDED.name] = BOUNDED.maximum + 1
    assert BOUNDED.name in _error_fields(client.post("/predict", json=record))


def test_unknown_category_is_422_naming_the_field(client, record):
    record[CATEGORICAL.name] = "no-such-category"
    assert CATEGORICAL.name in _error_fields(client.post("/predict", json=record))


def test_unknown_field_is_422_naming_it(client, record):
    record["no_such_feature"] = 1
    assert "no_such_feature" in _error_fields(client.post("/predict", json=record))


def test_wrong_type_is_422_naming_the_field(client, record):
    record[BOUNDED.name] = "a lot"
    assert BOUNDED.name in _error_fields(client.post("/predict", json=record))


@pytest.mark.parametrize("body", [b"{not json", b"\xa3\xff not even text"])
def test_malformed_json_is_422(client, body):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("feature", NUMBERS, ids=lambda f: f.name)
@pytest.mark.parametrize("kind", ["true", "text"])
def test_a_number_of_another_json_type_is_422_naming_the_field(client, record, feature, kind):
    """The document says number or integer: not `true`, not `"12"` (pydantic alone, in its lax
    mode, would take both)."""
    value = feature.minimum if feature.minimum is not None else 1
    record[feature.name] = True if kind == "true" else str(int(value))
    assert feature.name in _error_fields(client.post("/predict", json=record))


@pytest.mark.parametrize("feature", INTEGERS, ids=lambda f: f.name)
def test_an_integer_may_be_written_as_a_whole_number_only(client, record, feature):
    """JSON Schema counts 12.0 as an integer; 12.5 is not one."""
    whole = feature.minimum if feature.minimum is not None else 0
    record[feature.name] = float(whole)
    assert client.post("/predict", json=record).status_code == 200
    record[feature.name] = whole + 0.5
    assert feature.name in _error_fields(client.post("/predict", json=record))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client, record, token):
    body = json.dumps(record).replace(
        f'"{BOUNDED.name}": {json.dumps(record[BOUNDED.name])}', f'"{BOUNDED.name}": {token}'
    )
    assert token in body
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert BOUNDED.name in _error_fields(response)
