"""Schemathesis generates requests from the OpenAPI document: none may cause a server error."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from customer_churn.service.app import create_app


@pytest.fixture(scope="module")
def operations(serving_model, settings):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, serving_model))
    return {str(result.ok().label): result.ok() for result in schema.get_all_operations()}


def test_every_operation_is_fuzzed(operations):
    assert {"POST /predict", "GET /model", "GET /ready", "POST /admin/reload"} <= set(operations)


@pytest.mark.parametrize(
    "label", ["POST /predict", "GET /model", "GET /health", "GET /ready", "POST /admin/reload"]
)
def test_no_generated_request_causes_a_server_error(operations, label):
    @given(case=operations[label].as_strategy())
    @hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call()
        assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"

    check()
