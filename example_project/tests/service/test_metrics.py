"""The metrics count requests, predictions and the model served."""

import re


def test_metrics_count_requests_predictions_and_the_model(client, record, trained):
    client.post("/predict", json=[record, record])
    text = client.get("/metrics").text
    assert re.search(
        r'http_requests_total\{method="POST",route="/predict",status="200"\} [1-9]', text
    )
    assert 'http_request_duration_seconds_bucket{le="0.01",route="/predict"}' in text
    assert re.search(r"predictions_total\{outcome=\"[^\"]+\",variant=\"champion\"\} [1-9]", text)
    labels = (
        f'backend="onnx",name="{trained.manifest["name"]}",variant="champion",'
        f'version="{trained.model_version}"'
    )
    assert "model_info{" + labels + "} 1.0" in text
    assert "model_loaded 1.0" in text
