"""POST /predict: one record, a list of records, and the limits of a batch."""

import pytest

from customer_churn.contract import CONTRACT
from customer_churn.features import records_of


def test_one_record(client, record, trained):
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == trained.model_version
    assert len(body["predictions"]) == 1
    assert body["predictions"][0]["prediction"] in CONTRACT.target.classes
    assert 0 <= body["predictions"][0]["probability"] <= 1


def test_a_list_of_records_matches_one_by_one(client, sample):
    records = records_of(sample.head(5))
    batch = client.post("/predict", json=records).json()["predictions"]
    single = [client.post("/predict", json=r).json()["predictions"][0] for r in records]
    assert len(batch) == len(records)
    for together, alone in zip(batch, single, strict=True):
        # A batch may sum in another order (tree ensembles; a linear model's matrix product),
        # and ONNX Runtime sums in float32: equal up to float32 rounding (about 1e-7).
        assert together.pop("prediction") == alone.pop("prediction")
        shares = together.pop("probabilities", {})
        assert shares == pytest.approx(alone.pop("probabilities", {}), rel=1e-6)
        assert together == pytest.approx(alone, rel=1e-6)


def test_empty_and_oversized_batches_are_refused(client, record):
    assert client.post("/predict", json=[]).status_code == 422
    response = client.post("/predict", json=[record] * 51)
    assert response.status_code == 413
    assert "limit of 50" in response.json()["detail"]
