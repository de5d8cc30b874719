"""The traffic simulator: drifted rows that still follow the contract, sent to a live service."""

import pandas as pd

from customer_churn.data.validate import validate
from customer_churn.monitoring.simulate import drifted, send
from customer_churn.sampling import sample_rows
from customer_churn.service.app import create_app
from customer_churn.service.prediction_log import read_log
from tests.service.conftest import running


def test_drifted_rows_still_follow_the_contract():
    validate(drifted(sample_rows(500, seed=1), 1.0))


def test_simulated_traffic_reaches_the_log_with_joinable_labels(serving_model, settings, tmp_path):
    changed = settings.model_copy(update={"prediction_log_dir": tmp_path / "log"})
    with running(create_app(changed, serving_model)) as base:
        traffic = send(base, requests=40, batch=2, drift=0.5, labels_out=tmp_path / "labels.csv")
    assert traffic.sent == 40 and traffic.failed == 0 and traffic.records == 80
    logged, _ = read_log(tmp_path / "log")
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert len(logged) == len(labels) == 80
    keys = {(r["request_id"], r["row"]) for r in logged}
    assert keys == set(zip(labels["request_id"], labels["row"], strict=True))
