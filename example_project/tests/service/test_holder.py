"""The models served: loaded in the background, replaced only by one that loads and answers."""

import shutil
import socket
import time

from fastapi.testclient import TestClient
from pydantic import SecretStr

from customer_churn.service.app import create_app
from customer_churn.service.schemas import Record


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
    # The pull imports MLflow in a new process before it finds the server away: seconds, and
    # more on a busy machine; the request time-out is not what this test is about.
    secured = settings.model_copy(update={"api_key": SecretStr("k"), "request_timeout": 600.0})
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
