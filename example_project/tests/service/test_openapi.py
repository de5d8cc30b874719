"""The OpenAPI document describes every feature of a record, the size of a batch and every
answer the service can give (the fuzz test holds the running service to it)."""

from customer_churn.contract import CONTRACT
from tests.service.conftest import BOUNDED


def test_openapi_documents_every_feature(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert set(schema["properties"]) == set(CONTRACT.feature_names)
    declared = schema["properties"][BOUNDED.name]
    declared = declared["anyOf"][0] if BOUNDED.nullable else declared  # or null
    assert declared["maximum"] == BOUNDED.maximum


def test_the_batch_limits_and_the_error_answers_are_documented(client):
    document = client.get("/openapi.json").json()
    predict = document["paths"]["/predict"]["post"]
    (_, batch) = predict["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert batch["minItems"] == 1 and batch["maxItems"] == 50  # the client's max_batch_size
    problem = {"$ref": "#/components/schemas/Problem"}
    for status in ("401", "413", "503", "504"):
        assert predict["responses"][status]["content"]["application/json"]["schema"] == problem
    assert "422" in predict["responses"]
    reload = document["paths"]["/admin/reload"]["post"]["responses"]
    assert {"400", "401", "403", "409", "422"} <= set(reload)
    assert "503" not in document["paths"]["/health"]["get"]["responses"]  # never shed
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}
