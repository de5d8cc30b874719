"""The HTTP API: predictions, validation errors that name the field, limits, info endpoints."""

import pytest
from fastapi.testclient import TestClient

from customer_churn.contract import CONTRACT
from customer_churn.fields import Categorical, Numeric
from customer_churn.serve import Record, create_app

BOUNDED = next(f for f in CONTRACT.features if isinstance(f, Numeric) and f.maximum is not None)
CATEGORICAL = next(f for f in CONTRACT.features if isinstance(f, Categorical))


@pytest.fixture(scope="module")
def client(model, settings):
    app = create_app(settings.model_copy(update={"max_batch_size": 50}), model)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def record(sample):
    """One valid record as JSON (missing values become null)."""
    row = sample[CONTRACT.feature_names].iloc[0]
    return {k: (None if v != v else v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def test_one_record(client, record, trained):
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == trained.model_version
    assert len(body["predictions"]) == 1
    assert body["predictions"][0]["prediction"] in CONTRACT.target.classes
    assert 0 <= body["predictions"][0]["probability"] <= 1


def test_a_list_of_records_matches_one_by_one(client, sample):
    rows = sample[CONTRACT.feature_names].head(5).astype(object)
    records = rows.where(rows.notna(), None).to_dict(orient="records")
    batch = client.post("/predict", json=records).json()["predictions"]
    single = [client.post("/predict", json=r).json()["predictions"][0] for r in records]
    assert len(batch) == len(records)
    for together, alone in zip(batch, single, strict=True):
        # Tree ensembles may sum in another order for a batch: equal up to rounding.
        assert together == pytest.approx(alone, rel=1e-9)


def test_the_openapi_example_is_a_valid_request(client):
    example = Record.model_config["json_schema_extra"]["examples"][0]
    assert client.post("/predict", json=example).status_code == 200


def _error_fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {str(error["loc"][-1]) for error in response.json()["detail"]}


def test_errors_speak_of_the_shape_sent(client, record):
    """One bad field in one record is one error at body.<field>; in a list, at body.<i>.<field>."""
    record[BOUNDED.name] = BOUNDED.maximum + 1
    single = client.post("/predict", json=record).json()["detail"]
    assert [e["loc"] for e in single] == [["body", BOUNDED.name]]
    listed = client.post("/predict", json=[record, record]).json()["detail"]
    assert [e["loc"] for e in listed] == [["body", 0, BOUNDED.name], ["body", 1, BOUNDED.name]]


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


def test_empty_and_oversized_batches_are_refused(client, record):
    assert client.post("/predict", json=[]).status_code == 422
    response = client.post("/predict", json=[record] * 51)
    assert response.status_code == 413
    assert "limit of 50" in response.json()["detail"]


def test_malformed_json_is_422(client):
    response = client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_health_and_model_info(client, trained):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/model").json()
    assert info["version"] == trained.model_version and info["run_id"] == trained.run_id
    assert info["features"] == CONTRACT.feature_names


def test_openapi_documents_every_feature(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert set(schema["properties"]) == set(CONTRACT.feature_names)
    assert schema["properties"][BOUNDED.name]["anyOf"][0]["maximum"] == BOUNDED.maximum
