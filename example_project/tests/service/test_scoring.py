"""Answered predictions go to the prediction log, which never fails a request."""

import time

from fastapi.testclient import TestClient

from customer_churn.features import records_of
from customer_churn.service.app import create_app
from customer_churn.service.prediction_log import read_log


def test_predictions_are_logged_with_their_request_id(serving_model, settings, sample, tmp_path):
    folder = tmp_path / "log"
    app = create_app(settings.model_copy(update={"prediction_log_dir": folder}), serving_model)
    records = records_of(sample.head(3))
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
