"""MLflow: tracking set-up, logging and registering a model, exporting it, loading it back.

MLflow is imported inside the functions: it takes seconds to import, and the commands that
do not track (data generation, validation) should not pay for it.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ModelLoadError
from .settings import Settings

ALIAS = "challenger"  # set on every newly registered version
METADATA_FILE = "metadata.json"
REGISTRY_SCHEMES = ("models:/", "runs:/")
SERVING_DISTRIBUTIONS = ("scikit-learn", "pandas", "numpy", "skops")


@dataclass
class LoadedModel:
    """A fitted pipeline and where it came from."""

    pipeline: Any
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def _is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def configure_tracking(settings: Settings) -> str:
    """Point MLflow at the configured server or file and return the experiment id."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        # A local store keeps artifacts in the project folder; a server chooses its own store.
        location = None
        if _is_local_store(settings.tracking_uri):
            location = settings.artifact_location.resolve().as_uri()
        experiment_id = mlflow.create_experiment(settings.experiment_name, location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _trusted_types(pipeline) -> list[str]:
    """Types skops must be told to trust when loading this pipeline (only sklearn/numpy ones)."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = [name for name in untrusted if not name.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise TypeError(f"the pipeline holds types that are not sklearn or numpy: {foreign}")
    return untrusted


def _model_kwargs(pipeline, sample: pd.DataFrame) -> dict[str, Any]:
    from mlflow.models import infer_signature

    return {
        "signature": infer_signature(sample, pipeline.predict(sample)),
        "input_example": sample.head(3),
        # Stating the environment avoids MLflow's slow import-tracing inference.
        "conda_env": {
            "name": "serving",
            "channels": ["conda-forge"],
            "dependencies": [
                f"python={platform.python_version()}",
                "pip",
                {"pip": [f"{dist}=={version(dist)}" for dist in SERVING_DISTRIBUTIONS]},
            ],
        },
        "serialization_format": "skops",
        "skops_trusted_types": _trusted_types(pipeline),
    }


def log_and_register(pipeline, sample: pd.DataFrame, settings: Settings) -> str:
    """Log the model to the active run, register a new version, alias it; return the version."""
    import mlflow
    from mlflow import MlflowClient

    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        registered_model_name=settings.registered_model_name,
        **_model_kwargs(pipeline, sample),
    )
    model_version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(settings.registered_model_name, ALIAS, model_version)
    return model_version


def export_model(pipeline, sample: pd.DataFrame, target: Path, metadata: dict[str, Any]) -> Path:
    """Save the model as an MLflow model folder at `target`, replacing any previous one whole."""
    import mlflow

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        mlflow.sklearn.save_model(pipeline, staging / "model", **_model_kwargs(pipeline, sample))
        (staging / "model" / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        previous = staging / "previous"
        if target.exists():
            target.rename(previous)
        try:
            (staging / "model").rename(target)
        except OSError:
            if previous.exists():
                previous.rename(target)  # put the old model back rather than leave none
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_model(uri: str, settings: Settings) -> LoadedModel:
    """Load a pipeline from an export folder or a `models:/NAME@ALIAS` / `runs:/` URI."""
    import mlflow

    if uri.startswith(REGISTRY_SCHEMES):
        mlflow.set_tracking_uri(settings.tracking_uri)
        try:
            pipeline = mlflow.sklearn.load_model(uri)
        except Exception as error:
            raise ModelLoadError(
                f"cannot load model '{uri}' from {settings.tracking_uri}: {error}"
            ) from error
        return LoadedModel(pipeline, uri, **_registry_details(uri))
    path = Path(uri)
    if not (path / "MLmodel").is_file():
        raise ModelLoadError(
            f"no model at '{uri}': expected an MLflow model folder (run the train command first) "
            "or a models:/NAME@ALIAS URI"
        )
    try:
        pipeline = mlflow.sklearn.load_model(str(path))
    except Exception as error:
        raise ModelLoadError(f"the model at '{uri}' cannot be loaded: {error}") from error
    metadata_path = path / METADATA_FILE
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    return LoadedModel(
        pipeline,
        uri,
        name=metadata.get("name"),
        version=metadata.get("version"),
        run_id=metadata.get("run_id"),
        metrics=metadata.get("metrics", {}),
    )


def _registry_details(uri: str) -> dict[str, Any]:
    """Name, version, run and metrics of a registry URI; empty where it cannot tell."""
    from mlflow import MlflowClient

    client = MlflowClient()
    reference = uri.removeprefix("models:/")
    if uri.startswith("runs:/"):
        run_id = uri.removeprefix("runs:/").split("/")[0]
        return {"run_id": run_id, "metrics": client.get_run(run_id).data.metrics}
    if "@" in reference:
        name, alias = reference.split("@", 1)
        model_version = client.get_model_version_by_alias(name, alias)
    else:
        name, number = reference.split("/", 1)
        model_version = client.get_model_version(name, number)
    run = client.get_run(model_version.run_id)
    return {
        "name": name,
        "version": str(model_version.version),
        "run_id": model_version.run_id,
        "metrics": run.data.metrics,
    }
