"""Shared fixtures: a small dataset, settings pointing into a temporary folder, a trained model.

The rows are sampled from the contract (sampling.py), so the tests follow any contract.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import pytest

from customer_churn.data.ingest import write_table
from customer_churn.data.validate import validate
from customer_churn.errors import DataError
from customer_churn.jobs.train import TrainResult, train
from customer_churn.registry.artifact import ServingModel, load_serving_model
from customer_churn.registry.tracking import LoadedModel, load_model
from customer_churn.sampling import sample_rows
from customer_churn.settings import Settings


def make_settings(folder, **overrides) -> Settings:
    """Settings whose every path lives under `folder`, ignoring any .env file."""
    values = {
        "data_path": folder / "data" / "train.csv",
        "models_dir": folder / "models",
        "reports_dir": folder / "reports",
        "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
        "artifact_location": folder / "mlartifacts",
        "cv_folds": 3,
        "tuned_params_path": folder / "tuned_params.json",  # never the project's own
        "model_uri": str(folder / "models" / "model"),
        "prediction_log_dir": folder / "logs" / "predictions",
        # A test process stalls now and then on a busy machine: only the tests of load
        # shedding, which set their own limit, should ever see a 503 for it.
        "max_queue_delay_ms": 5000.0,
        # Nor should this machine's speed decide a promotion: the tests of the latency limit
        # set one themselves.
        "max_p99_latency_ms": None,
        "monitoring_dir": folder / "reports" / "monitoring",
    }
    return Settings(_env_file=None, **(values | overrides))


def example_fits_the_contract() -> bool:
    """Whether the example generator (synthetic.py) still writes rows of the contract."""
    from customer_churn.synthetic import generate

    try:
        validate(generate(20, seed=0))
    except DataError:
        return False
    return True


# The example generator describes the example contract; once the contract is yours, the tests
# of the generator and of the `data` command that writes its rows skip.
example_only = pytest.mark.skipif(
    not example_fits_the_contract(), reason="synthetic.py does not generate this contract's rows"
)


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("project")
    result = make_settings(folder)
    write_table(sample_rows(800, seed=7), result.data_path)
    return result


@pytest.fixture(scope="session")
def trained(settings) -> TrainResult:
    return train(settings)


@pytest.fixture(scope="session")
def model(trained, settings) -> LoadedModel:
    return load_model(str(trained.export_dir), settings)


@pytest.fixture(scope="session")
def serving_model(trained) -> ServingModel:
    """What the service runs: the ONNX graph of the export."""
    return load_serving_model(trained.export_dir)


@pytest.fixture
def sample():
    """A fresh, valid, labelled frame (different rows from the training data)."""
    return sample_rows(60, seed=11)
