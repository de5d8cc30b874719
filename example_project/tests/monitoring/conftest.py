"""Logged windows the monitoring tests share: one like the training data, one drifted."""

import pandas as pd
import pytest

from customer_churn.features import records_of
from customer_churn.monitoring.simulate import drifted
from customer_churn.sampling import sample_rows
from customer_churn.service.prediction_log import PredictionLog


def _write_log(folder, serving_model, frame: pd.DataFrame) -> None:
    """Log `frame` as the service would: one request per row, with the model's answers."""
    records = records_of(frame)
    predictions, probabilities = serving_model.predict_records(records)
    log = PredictionLog(folder)
    for index, record in enumerate(records):
        probability = None if probabilities is None else [probabilities[index]]
        log.record(
            f"req-{index}", serving_model.version, 0.4, [record], [predictions[index]], probability
        )
    log.close()


@pytest.fixture(scope="package")
def windows(tmp_path_factory, serving_model):
    """Two logged windows of 600 records: one like the training data, one drifted."""
    folder = tmp_path_factory.mktemp("windows")
    rows = sample_rows(600, seed=101)
    _write_log(folder / "clean", serving_model, rows)
    _write_log(folder / "drifted", serving_model, drifted(rows, 1.0, seed=3))
    return folder, rows
