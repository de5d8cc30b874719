"""The OpenAPI document describes every feature of a record."""

from customer_churn.contract import CONTRACT
from tests.service.conftest import BOUNDED


def test_openapi_documents_every_feature(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert set(schema["properties"]) == set(CONTRACT.feature_names)
    declared = schema["properties"][BOUNDED.name]
    declared = declared["anyOf"][0] if BOUNDED.nullable else declared  # or null
    assert declared["maximum"] == BOUNDED.maximum
