"""The HTTP API: predictions, validation errors that name the field, limits, info endpoints."""

import asyncio
import json
import re
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from customer_churn.contract import CONTRACT
from customer_churn.fields import Categorical, Numeric
from customer_churn.prediction_log import read_log
from customer_churn.serve import Record, create_app

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


def test_one_record(client, record, trained):
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == trained.model_version
    assert len(body["predictions"]) == 1
    assert body["predictions"][0]["prediction"] in CONTRACT.target.classes
    assert 0 <= body["predictions"][0]["probability"] <= 1


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
    rows = sample[CONTRACT.feature_names].head(5).astype(object)
    records = rows.where(rows.notna(), None).to_dict(orient="records")
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


def test_a_list_of_records_matches_one_by_one(client, sample):
    rows = sample[CONTRACT.feature_names].head(5).astype(object)
    records = rows.where(rows.notna(), None).to_dict(orient="records")
    batch = client.post("/predict", json=records).json()["predictions"]
    single = [client.post("/predict", json=r).json()["predictions"][0] for r in records]
    assert len(batch) == len(records)
    for together, alone in zip(batch, single, strict=True):
        # Tree ensembles may sum in another order for a batch: equal up to rounding.
        assert together == pytest.approx(alone, rel=1e-9)


def test_the_openapi_example_is_a_valid_request(client):
    example = Record.model_config["json_schema_extra"]["examples"][0]
    assert client.post("/predict", json=example).status_code == 200


def _error_fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {str(error["loc"][-1]) for error in response.json()["detail"]}


def test_errors_speak_of_the_shape_sent(client, record):
    """One bad field in one record is one error at body.<field>; in a list, at body.<i>.<field>."""
    record[BOUNDED.name] = BOUNDED.maximum + 1
    single = client.post("/predict", json=record).json()["detail"]
    assert [e["loc"] for e in single] == [["body", BOUNDED.name]]
    listed = client.post("/predict", json=[record, record]).json()["detail"]
    assert [e["loc"] for e in listed] == [["body", 0, BOUNDED.name], ["body", 1, BOUNDED.name]]


def test_out_of_range_is_422_naming_the_field(client, record):
    record[BOUNDED.name] = BOUNDED.maximum + 1
    assert BOUNDED.name in _error_fields(client.post("/predict", json=record))


def test_unknown_category_is_422_naming_the_field(client, record):
    record[CATEGORICAL.name] = "no-such-category"
    assert CATEGORICAL.name in _error_fields(client.post("/predict", json=record))


def test_unknown_field_is_422_naming_it(client, record):
    record["no_such_feature"] = 1
    assert "no_such_feature" in _error_fields(client.post("/predict", json=record))


def test_wrong_type_is_422_naming_the_field(client, record):
    record[BOUNDED.name] = "a lot"
    assert BOUNDED.name in _error_fields(client.post("/predict", json=record))


def test_empty_and_oversized_batches_are_refused(client, record):
    assert client.post("/predict", json=[]).status_code == 422
    response = client.post("/predict", json=[record] * 51)
    assert response.status_code == 413
    assert "limit of 50" in response.json()["detail"]


def test_malformed_json_is_422(client):
    response = client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_health_readiness_and_model_info(client, trained):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {
        "status": "ready",
        "model_version": trained.model_version,
    }
    info = client.get("/model").json()
    assert info["version"] == trained.model_version and info["run_id"] == trained.run_id
    assert info["features"] == CONTRACT.feature_names
    assert info["backend"] == "onnx" and info["trained_at"] and info["git_commit"]


def test_openapi_documents_every_feature(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert set(schema["properties"]) == set(CONTRACT.feature_names)
    assert schema["properties"][BOUNDED.name]["anyOf"][0]["maximum"] == BOUNDED.maximum


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client, record, token):
    body = json.dumps(record).replace(
        f'"{BOUNDED.name}": {json.dumps(record[BOUNDED.name])}', f'"{BOUNDED.name}": {token}'
    )
    assert token in body
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert BOUNDED.name in _error_fields(response)


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


def test_work_waiting_too_long_is_shed_but_never_probes(
    serving_model, settings, record, monkeypatch
):
    """Requests that each hold the loop for 150 ms: of several sent at once, those that wait
    behind the others for more than 50 ms are refused at once with 503 and Retry-After; probes
    still answer; a request after one long request is not refused."""
    app = create_app(settings.model_copy(update={"max_queue_delay_ms": 50}), serving_model)
    predict = serving_model.predict
    monkeypatch.setattr(serving_model, "predict", lambda c: (time.sleep(0.15), predict(c))[1])
    with TestClient(app) as client:
        assert client.post("/predict", json=record).status_code == 200
        assert client.post("/predict", json=record).status_code == 200, "one at a time: admitted"
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda _: client.post("/predict", json=record), range(4)))
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


def test_predictions_are_logged_with_their_request_id(serving_model, settings, sample, tmp_path):
    folder = tmp_path / "log"
    app = create_app(settings.model_copy(update={"prediction_log_dir": folder}), serving_model)
    rows = sample[CONTRACT.feature_names].head(3).astype(object)
    records = rows.where(rows.notna(), None).to_dict(orient="records")
    with TestClient(app) as client:
        answer = client.post("/predict", json=records, headers={"x-request-id": "batch-7"}).json()
        client.post("/predict", json=records[0], headers={"x-request-id": "single-8"})
    # leaving the client shut the service down: the log was flushed before it exited
    logged, unreadable = read_log(folder)
    assert unreadable == 0
    assert [(r["request_id"], r["row"]) for r in logged] == [
        ("batch-7", 0),
        ("batch-7", 1),
        ("batch-7", 2),
        ("single-8", 0),
    ]
    assert logged[1]["inputs"] == records[1]
    assert logged[1]["prediction"] == answer["predictions"][1]["prediction"]
    assert logged[0]["model_version"] == answer["model_version"]
    assert all(r["latency_ms"] > 0 for r in logged)


def test_the_prediction_log_can_be_sampled_or_switched_off(
    serving_model, settings, record, tmp_path
):
    for name, update in {
        "off": {"prediction_log": False},
        "none-sampled": {"prediction_log_sample_rate": 0.0},
    }.items():
        folder = tmp_path / name
        changed = settings.model_copy(update=update | {"prediction_log_dir": folder})
        with TestClient(create_app(changed, serving_model)) as client:
            assert client.post("/predict", json=record).status_code == 200
        assert read_log(folder) == ([], 0)


def test_a_broken_log_disk_never_fails_a_request(serving_model, settings, record, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    broken = settings.model_copy(update={"prediction_log_dir": blocker / "log"})
    with TestClient(create_app(broken, serving_model)) as client:
        for _ in range(3):
            assert client.post("/predict", json=record).status_code == 200
        deadline = time.monotonic() + 10
        while 'prediction_log_dropped_total{reason="write_error"} 3.0' not in (
            text := client.get("/metrics").text
        ):
            assert time.monotonic() < deadline, text
            time.sleep(0.05)


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


def test_cors_is_closed_by_default(client):
    response = client.options(
        "/predict",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_reload_swaps_a_good_model_and_keeps_the_old_one_otherwise(
    serving_model, settings, trained, record, tmp_path
):
    secured = settings.model_copy(update={"api_key": SecretStr("k")})
    key = {"x-api-key": "k"}
    broken = tmp_path / "broken"
    shutil.copytree(trained.export_dir, broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    (broken / "pipeline.skops").write_bytes(b"not a pipeline")
    with TestClient(create_app(secured, serving_model)) as client:
        refused = client.post("/admin/reload", json={"model_uri": str(broken)}, headers=key)
        assert refused.status_code == 409 and "still serving version" in refused.json()["detail"]
        assert client.post("/predict", json=record, headers=key).status_code == 200
        missing = client.post(
            "/admin/reload", json={"model_uri": str(tmp_path / "none")}, headers=key
        )
        assert missing.status_code == 409
        swapped = client.post(
            "/admin/reload", json={"model_uri": str(trained.export_dir)}, headers=key
        )
        assert swapped.status_code == 200
        assert swapped.json()["version"] == trained.model_version


def test_a_registry_out_of_reach_fails_the_reload_not_the_service(
    serving_model, settings, record, monkeypatch
):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    # The pull runs in a separate process, which reads its settings from the environment.
    monkeypatch.setenv("CUSTOMER_CHURN_TRACKING_URI", f"http://127.0.0.1:{closed}")
    secured = settings.model_copy(update={"api_key": SecretStr("k")})
    key = {"x-api-key": "k"}
    with TestClient(create_app(secured, serving_model)) as client:
        registry_uri = f"models:/{secured.registered_model_name}@champion"
        refused = client.post("/admin/reload", json={"model_uri": registry_uri}, headers=key)
        assert refused.status_code == 409, refused.text
        assert "cannot reach the tracking server" in refused.json()["detail"]
        assert client.get("/ready").json()["model_version"] == serving_model.version
        assert client.post("/predict", json=record, headers=key).status_code == 200


def test_readiness_is_503_until_a_model_loads(settings, tmp_path):
    absent = settings.model_copy(update={"model_uri": str(tmp_path / "nothing")})
    with TestClient(create_app(absent)) as client:
        for _ in range(100):
            body = client.get("/ready").json()
            if "no model at" in body.get("reason", ""):
                break
            time.sleep(0.05)
        response = client.get("/ready")
        assert response.status_code == 503 and "no model at" in response.json()["reason"]
        assert client.get("/health").status_code == 200
        assert (
            client.post(
                "/predict", json=Record.model_config["json_schema_extra"]["examples"][0]
            ).status_code
            == 503
        )
