"""The dashboard: its page, the data it reads behind the API key, and the series of its charts
(the service's timeline of the last minutes, the predictions against training, drift, rollout)."""

import dataclasses
import json
import time
from importlib.resources import files

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from customer_churn.contract import CONTRACT
from customer_churn.features import records_of
from customer_churn.registry.artifact import REFERENCE_FILE
from customer_churn.sampling import sample_rows
from customer_churn.service import timeline as timeline_module
from customer_churn.service.app import create_app, example_record
from customer_churn.service.metrics import Metrics
from customer_churn.service.timeline import Timeline, histogram_quantile

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


def records(count: int, seed: int = 5) -> list[dict]:
    return records_of(sample_rows(count, seed=seed))


def outcomes_of(model, predictions) -> list[str]:
    """What the `predictions` metric counts of each answer, as the export's manifest says."""
    return [str(label) for label in predictions.tolist()]


def counted(model, sent: list[dict], keys: list[str]) -> list[float]:
    """How many of `model`'s answers to `sent` fall on each of `keys`."""
    answers = pd.Series(outcomes_of(model, model.predict_records(sent)[0]))
    return [float(n) for n in answers.value_counts().reindex(keys, fill_value=0)]


def disagreeing(model, version: str):
    """A challenger that answers otherwise than `model`: its outputs must show apart."""
    challenger = dataclasses.replace(model, manifest=model.manifest | {"version": version})

    def predict_records(sent):
        predictions, probabilities = model.predict_records(sent)
        labels = list(CONTRACT.target.labels)
        others = [labels[(labels.index(label) + 1) % len(labels)] for label in predictions]
        return pd.Series(others).to_numpy(), probabilities[:, ::-1]

    challenger.predict_records = predict_records
    return challenger


def test_the_page_is_served_and_holds_no_data(serving_model, secured):
    with TestClient(create_app(secured, serving_model)) as client:
        page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    shipped = files("customer_churn") / "service" / "dashboard.html"
    assert page.text == shipped.read_text()
    for part in ('id="predict-form"', "/dashboard/data", "/predict", "x-api-key"):
        assert part in page.text
    for chart in ("rate", "latency", "distribution", "drift", "agreement", "rollout"):
        assert f'<svg id="chart-{chart}" class="chart"' in page.text


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


def test_the_charts_get_the_last_minutes_and_the_training_distribution(
    serving_model, secured, trained
):
    sent = records(40)
    with TestClient(create_app(secured, serving_model)) as client:
        for record in sent[:30]:
            assert client.post("/predict", json=record, headers=KEY).status_code == 200
        first = client.app.state.timeline.tick()  # closes the interval: a point of its own
        for record in sent[30:]:
            assert client.post("/predict", json=record, headers=KEY).status_code == 200
        client.app.state.timeline.tick()
        data = client.get("/dashboard/data", headers=KEY).json()
    points = data["timeline"]["points"]
    # The service's own task closes an interval every few seconds too: count on either side.
    assert sum(p["requests"] for p in points if p["time"] <= first.time) == 30
    assert sum(p["requests"] for p in points if p["time"] > first.time) == 10
    busy = [p for p in points if p["requests"]]
    assert all(p["p50_ms"] > 0 and p["p99_ms"] >= p["p50_ms"] for p in busy)
    assert all(p["rate"] == pytest.approx(p["requests"] / p["seconds"]) for p in busy)
    distribution = data["distribution"]
    keys = distribution["keys"]
    assert keys == distribution["labels"] == [str(label) for label in CONTRACT.target.labels]
    assert distribution["recent"] == {"champion": counted(serving_model, sent, keys)}
    # Training's: the champion's answers on its drift reference, the training rows.
    reference = pd.read_parquet(trained.export_dir / REFERENCE_FILE)["prediction"].to_numpy()
    answers = pd.Series(outcomes_of(serving_model, reference))
    shares = answers.value_counts(normalize=True).reindex(keys, fill_value=0)
    assert distribution["training"] == pytest.approx(shares.tolist(), abs=1e-6)
    assert json.dumps(data)


def test_the_charts_have_empty_states_without_a_model_or_traffic(secured, tmp_path):
    nowhere = secured.model_copy(update={"model_uri": str(tmp_path / "no-model")})
    with TestClient(create_app(nowhere)) as client:
        data = client.get("/dashboard/data", headers=KEY).json()
    assert data["models"]["champion"] is None
    assert all(point["requests"] == 0 for point in data["timeline"]["points"])
    distribution = data["distribution"]
    assert distribution["training"] is None and distribution["recent"] == {}
    assert len(distribution["keys"]) == len(distribution["labels"]) > 0
    assert data["drift"] is None and data["comparison"] is None


def test_the_timeline_is_a_ring_buffer_of_intervals():
    metrics = Metrics()
    timeline = Timeline(metrics, interval=5, slots=3)
    for seconds in (0.0004, 0.003, 0.003, 0.02):
        metrics.record_request("/predict", "POST", 200, seconds)
    metrics.record_request("/predict", "POST", 500, 0.001)
    metrics.record_request("/health", "GET", 200, 0.0001)  # another route: not drawn
    metrics.count_prediction("a")
    metrics.count_variant_prediction("b", "challenger")
    first = timeline.tick().point()
    assert first["requests"] == 5  # whatever their status
    assert first["rate"] == pytest.approx(5 / first["seconds"])
    # Prometheus's estimate from the buckets: the third of five falls in (0.0025, 0.005].
    assert 2.5 <= first["p50_ms"] <= 5 and 10 <= first["p99_ms"] <= 25
    idle = timeline.tick().point()
    assert (idle["requests"], idle["rate"], idle["p50_ms"], idle["p99_ms"]) == (0, 0, None, None)
    assert timeline.summary()["outcomes"] == {"champion": {"a": 1}, "challenger": {"b": 1}}
    timeline.tick()
    timeline.tick()  # the fourth: the first leaves the buffer, and its predictions with it
    assert len(timeline.intervals) == 3
    assert timeline.summary()["outcomes"] == {}


def test_the_running_interval_shows_once_long_enough(monkeypatch):
    metrics = Metrics()
    timeline = Timeline(metrics)
    metrics.record_request("/predict", "POST", 200, 0.002)
    monkeypatch.setattr(timeline_module, "MIN_PARTIAL", 3600.0)
    assert timeline.summary()["points"] == []
    monkeypatch.setattr(timeline_module, "MIN_PARTIAL", 0.0)
    (running,) = timeline.summary()["points"]
    assert running["requests"] == 1 and len(timeline.intervals) == 0


def test_the_rollout_chart_gets_each_variants_outputs(serving_model, secured, tmp_path):
    shadowed = secured.model_copy(
        update={
            "rollout_mode": "shadow",
            "drift_min_records": 10,
            "rollout_min_records": 10,
        }
    )
    challenger = disagreeing(serving_model, "challenger-7")
    sent = records(31, seed=9)  # an odd count: the two variants' shares can never be equal
    with TestClient(create_app(shadowed, serving_model, challenger)) as client:
        for record in sent:
            assert client.post("/predict", json=record, headers=KEY).status_code == 200
        deadline = time.monotonic() + 10  # the challenger scores off the request path
        while True:
            data = client.get("/dashboard/data", headers=KEY).json()
            recent = data["distribution"]["recent"]
            if sum(recent.get("challenger", [])) >= len(sent) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    keys = data["distribution"]["keys"]
    assert recent == {
        "challenger": counted(challenger, sent, keys),
        "champion": counted(serving_model, sent, keys),
    }
    assert recent["challenger"] != recent["champion"]
    assert data["rollout"]["min_agreement"] == shadowed.rollout_min_agreement
    # The monitoring job's comparison and drift verdicts reach the charts as it wrote them.
    from customer_churn.monitoring.drift import run

    run(shadowed)
    with TestClient(create_app(shadowed, serving_model)) as client:
        data = client.get("/dashboard/data", headers=KEY).json()
    monitoring = shadowed.monitoring_dir
    assert data["comparison"] == json.loads((monitoring / "rollout.json").read_text())
    assert data["comparison"]["agreement"]["pairs"] == len(sent)
    assert data["drift"] == json.loads((monitoring / "drift.json").read_text())
    features = data["drift"]["features"]
    assert list(features) == CONTRACT.feature_names
    for verdict in [*features.values(), data["drift"]["prediction"]]:
        assert verdict["score"] >= 0 and verdict["threshold"] > 0
        assert verdict["drifted"] == (verdict["score"] > verdict["threshold"])


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
