"""The dashboard: its page, and the data it reads behind the API key."""

import json
import time
from importlib.resources import files

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from customer_churn.service.app import create_app, example_record
from customer_churn.service.dashboard import histogram_quantile

KEY = {"x-api-key": "s3cret"}


@pytest.fixture
def secured(settings, tmp_path):
    return settings.model_copy(
        update={
            "api_key": SecretStr("s3cret"),
            "access_log": False,
            "max_queue_delay_ms": 10_000,  # a busy test machine must not shed these requests
            "prediction_log_dir": tmp_path / "predictions",
            "monitoring_dir": tmp_path / "monitoring",
        }
    )


def test_the_page_is_served_and_holds_no_data(serving_model, secured):
    with TestClient(create_app(secured, serving_model)) as client:
        page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    shipped = files("customer_churn") / "service" / "dashboard.html"
    assert page.text == shipped.read_text()
    for part in ('id="predict-form"', "/dashboard/data", "/predict", "x-api-key"):
        assert part in page.text


def test_the_data_needs_the_api_key(serving_model, secured):
    with TestClient(create_app(secured, serving_model)) as client:
        assert client.get("/dashboard/data").status_code == 401
        assert client.get("/dashboard/data", headers={"x-api-key": "guess"}).status_code == 401
        assert client.get("/dashboard/data", headers=KEY).status_code == 200


def test_the_data_shows_the_model_traffic_and_recent_predictions(serving_model, secured, trained):
    with TestClient(create_app(secured, serving_model)) as client:
        for index in range(5):
            sent = KEY | {"x-request-id": f"seen-{index}"}
            assert client.post("/predict", json=example_record(), headers=sent).status_code == 200
        deadline = time.monotonic() + 10  # the prediction log writes twice a second
        while True:
            data = client.get("/dashboard/data", headers=KEY).json()
            if len(data["recent"]) >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    champion = data["models"]["champion"]
    assert champion["version"] == trained.model_version
    assert champion["metrics"] == trained.manifest["metrics"]
    assert champion["card"] and "# Model card" in champion["card"]
    assert data["models"]["challenger"] is None
    assert data["rollout"]["mode"] == "single"
    assert data["traffic"]["routes"]["/predict"]["requests"] == 5
    assert data["traffic"]["latency"]["/predict"]["p50_ms"] > 0
    assert sum(data["traffic"]["predictions"]["champion"].values()) == 5
    assert [r["request_id"] for r in data["recent"]] == [f"seen-{i}" for i in range(4, -1, -1)]
    assert data["example"] == example_record()


def test_the_data_shows_the_monitoring_results(serving_model, secured):
    secured.monitoring_dir.mkdir(parents=True)
    with TestClient(create_app(secured, serving_model)) as client:
        before = client.get("/dashboard/data", headers=KEY).json()
        (secured.monitoring_dir / "drift.json").write_text(json.dumps({"healthy": True}))
        after = client.get("/dashboard/data", headers=KEY).json()
    assert before["drift"] is None and before["comparison"] is None
    assert after["drift"] == {"healthy": True}


def test_histogram_quantile_interpolates_like_prometheus():
    buckets = [(0.001, 0.0), (0.01, 50.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.0055)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.055)
    assert histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(0.1, 0.0), (float("inf"), 10.0)]) == 0.1
