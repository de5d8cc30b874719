"""The access log: one JSON line per request, or none when switched off."""

import json

from fastapi.testclient import TestClient

from customer_churn.service.app import create_app


def test_the_access_log_is_one_json_line_per_request(serving_model, settings, record, capsys):
    with TestClient(create_app(settings, serving_model)) as client:
        capsys.readouterr()
        client.post("/predict", json=record, headers={"x-request-id": "trace-9"})
        client.post("/predict", json={"nonsense": 1}, headers={"x-request-id": "trace-10"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["request_id"], e["status"], e["message"]) for e in lines] == [
        ("trace-9", 200, "POST /predict 200"),
        ("trace-10", 422, "POST /predict 422"),
    ]
    assert all(e["duration_ms"] > 0 and e["level"] == "info" for e in lines)
    quiet = settings.model_copy(update={"access_log": False})
    with TestClient(create_app(quiet, serving_model)) as client:
        capsys.readouterr()
        client.post("/predict", json=record)
    assert capsys.readouterr().err == ""
