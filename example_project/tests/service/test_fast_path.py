"""The fast path of POST /predict answers as the route does."""

from prometheus_client.parser import text_string_to_metric_families

from customer_churn.features import records_of


def _answered_predictions(client) -> float:
    """The request counter of POST /predict answered 200, from /metrics."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels.get("route") == "/predict"
        and sample.labels.get("status") == "200"
    )


def test_the_fast_path_and_the_route_answer_alike(client, sample):
    """A plain POST /predict is answered before FastAPI's routing; one with a query string
    goes through the route. Same predictions, same headers, counted under the same route."""
    records = records_of(sample.head(5))
    counted = _answered_predictions(client)
    fast = client.post("/predict", json=records, headers={"x-request-id": "fast-1"})
    routed = client.post(
        "/predict?explain=false", json=records, headers={"x-request-id": "routed-1"}
    )
    assert fast.status_code == routed.status_code == 200
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["x-request-id"] == "fast-1" and routed.headers["x-request-id"] == "routed-1"
    assert fast.json() | {"request_id": "routed-1"} == routed.json()
    assert _answered_predictions(client) == counted + 2
