"""Three ways to a prediction agree: batch (pipeline), the API (ONNX), MLflow's pyfunc."""

import mlflow
import numpy as np
from fastapi.testclient import TestClient

from customer_churn.data.ingest import load_table, split
from customer_churn.data.validate import validate
from customer_churn.features import features_of, records_of
from customer_churn.jobs.predict import predict_frame
from customer_churn.registry.artifact import load_serving_model
from customer_churn.registry.tracking import ALIAS
from customer_churn.service.app import create_app


def test_batch_api_and_pyfunc_agree_on_the_holdout(model, trained, settings):
    _, holdout = split(validate(load_table(settings.data_path)), settings.test_size, settings.seed)
    batch = predict_frame(model, holdout)

    records = records_of(holdout)
    with TestClient(create_app(settings, load_serving_model(trained.export_dir))) as client:
        served = client.post("/predict", json=records).json()["predictions"]
    api = np.array([p["prediction"] for p in served])

    mlflow.set_tracking_uri(settings.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.registered_model_name}@{ALIAS}")
    via_pyfunc = np.asarray(pyfunc.predict(features_of(holdout)))

    tolerance = trained.manifest["onnx"]["tolerance"]
    np.testing.assert_array_equal(via_pyfunc, batch["prediction"])
    assert np.mean(api == batch["prediction"]) >= 0.97
    probabilities = np.array([p["probability"] for p in served])
    assert np.max(np.abs(probabilities - batch["probability"])) <= tolerance


def test_the_sklearn_backend_is_exact(model, trained, settings, sample):
    exact = load_serving_model(trained.export_dir, backend="sklearn")
    assert exact.backend == "sklearn" and "serving_backend" in exact.reason
    records = records_of(sample)
    with TestClient(create_app(settings, exact)) as client:
        served = client.post("/predict", json=records).json()["predictions"]
    served = [p["prediction"] for p in served]
    expected = predict_frame(model, sample)
    np.testing.assert_array_equal(served, expected["prediction"])


def test_a_corrupt_graph_falls_back_to_the_pipeline(trained, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained.export_dir, copy)
    (copy / "model.onnx").write_bytes(b"garbage")
    served = load_serving_model(copy)
    assert served.backend == "sklearn" and "model.onnx cannot be loaded" in served.reason
