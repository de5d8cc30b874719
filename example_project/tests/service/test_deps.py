"""The API-key checks the routes share."""

from fastapi.testclient import TestClient
from pydantic import SecretStr

from customer_churn.service.app import create_app


def test_api_key_guards_prediction_and_admin_routes(serving_model, settings, record):
    secured = settings.model_copy(update={"api_key": SecretStr("s3cret")})
    with TestClient(create_app(secured, serving_model)) as client:
        assert client.post("/predict", json=record).status_code == 401
        wrong = client.post("/predict", json=record, headers={"x-api-key": "guess"})
        assert wrong.status_code == 401
        right = client.post("/predict", json=record, headers={"x-api-key": "s3cret"})
        assert right.status_code == 200
        assert client.get("/health").status_code == 200
        assert client.post("/admin/reload").status_code == 401


def test_admin_routes_are_off_without_an_api_key(client):
    assert client.post("/admin/reload").status_code == 403
