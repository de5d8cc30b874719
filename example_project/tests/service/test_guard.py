"""The request guard: body limit, request ids, load shedding, time-outs, a bare 500."""

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from customer_churn.service.app import create_app


def test_oversized_bodies_are_refused_before_parsing(serving_model, settings, record):
    app = create_app(settings.model_copy(update={"max_body_bytes": 2048}), serving_model)
    with TestClient(app) as small:
        response = small.post("/predict", json=[record] * 40)
    assert response.status_code == 413 and "exceeds 2048 bytes" in response.json()["detail"]


def test_request_ids_are_echoed_or_made(client, record):
    response = client.post("/predict", json=record, headers={"x-request-id": "order-42"})
    assert response.headers["x-request-id"] == "order-42"
    assert response.json()["request_id"] == "order-42"
    made = client.post("/predict", json=record, headers={"x-request-id": "bad id\n"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])


def test_work_waiting_too_long_is_shed_but_never_probes(
    serving_model, settings, record, monkeypatch
):
    """Requests that each hold the loop for half a second: of several sent at once, those that
    wait behind the others for more than 50 ms are refused at once with 503 and Retry-After;
    probes still answer; a request after one long request is not refused. (Half a second, and
    six at once: on a busy machine the senders' threads may start late, and a shorter hold
    could end before the next request arrives.)"""
    app = create_app(settings.model_copy(update={"max_queue_delay_ms": 50}), serving_model)
    predict = serving_model.predict
    monkeypatch.setattr(serving_model, "predict", lambda c: (time.sleep(0.5), predict(c))[1])
    with TestClient(app) as client:
        assert client.post("/predict", json=record).status_code == 200
        assert client.post("/predict", json=record).status_code == 200, "one at a time: admitted"
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda _: client.post("/predict", json=record), range(6)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses[0] == 200 and statuses[-1] == 503, statuses
        shed = next(answer for answer in answers if answer.status_code == 503)
        assert shed.headers["retry-after"] == "1" and "overloaded" in shed.json()["detail"]
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        text = client.get("/metrics").text
        assert f"requests_shed_total {statuses.count(503)}.0" in text


def test_a_request_over_the_time_limit_gets_504(serving_model, settings, record):
    app = create_app(settings.model_copy(update={"request_timeout": 0.2}), serving_model)

    async def slow_upload():
        await asyncio.sleep(1)  # a client that sends its body too slowly
        return {"type": "http.request", "body": json.dumps(record).encode(), "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predict", "raw_path": b"/predict", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    with TestClient(app):  # the model is installed; the slow request goes to the app directly
        asyncio.run(app(scope, slow_upload, send))
    assert sent[0]["status"] == 504
    assert "longer than 0.2 s" in json.loads(sent[1]["body"])["detail"]


def test_errors_never_reveal_a_stack_trace(serving_model, settings, record, monkeypatch):
    app = create_app(settings, serving_model)

    def explode(columns):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(serving_model, "predict", explode)
    with TestClient(app, raise_server_exceptions=False) as failing:
        response = failing.post("/predict", json=record)
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error",
        "request_id": response.headers["x-request-id"],
    }
    assert "secret" not in response.text and "Traceback" not in response.text
