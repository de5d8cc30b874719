"""The traffic simulator: drifted rows that still follow the contract, sent to a live service."""

import socket
import threading
import time

import pandas as pd
import uvicorn

from customer_churn.data.validate import validate
from customer_churn.monitoring.simulate import drifted, send
from customer_churn.sampling import sample_rows
from customer_churn.service.app import create_app
from customer_churn.service.prediction_log import read_log


def test_drifted_rows_still_follow_the_contract():
    validate(drifted(sample_rows(500, seed=1), 1.0))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_simulated_traffic_reaches_the_log_with_joinable_labels(serving_model, settings, tmp_path):
    changed = settings.model_copy(update={"prediction_log_dir": tmp_path / "log"})
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(changed, serving_model), port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        traffic = send(
            f"http://127.0.0.1:{port}",
            requests=40,
            batch=2,
            drift=0.5,
            labels_out=tmp_path / "labels.csv",
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert traffic.sent == 40 and traffic.failed == 0 and traffic.records == 80
    logged, _ = read_log(tmp_path / "log")
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert len(logged) == len(labels) == 80
    keys = {(r["request_id"], r["row"]) for r in logged}
    assert keys == set(zip(labels["request_id"], labels["row"], strict=True))
