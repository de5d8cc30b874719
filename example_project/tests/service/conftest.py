"""Fixtures of the service's tests: a service with a model, and a valid record."""

import pytest
from fastapi.testclient import TestClient

from customer_churn.contract import CONTRACT
from customer_churn.fields import Categorical, Numeric
from customer_churn.service.app import create_app

BOUNDED = next(f for f in CONTRACT.features if isinstance(f, Numeric) and f.maximum is not None)
CATEGORICAL = next(f for f in CONTRACT.features if isinstance(f, Categorical))


@pytest.fixture(scope="module")
def client(serving_model, settings):
    app = create_app(settings.model_copy(update={"max_batch_size": 50}), serving_model)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def record(sample):
    """One valid record as JSON (missing values become null)."""
    row = sample[CONTRACT.feature_names].iloc[0]
    return {k: (None if v != v else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
