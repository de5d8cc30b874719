"""MLflow: tracking set-up, logging and registering a model, exporting it, loading it back.

MLflow is imported inside the functions: it takes seconds to import, and the commands that
do not track (data generation, validation) should not pay for it. `pull` imports nothing but
MLflow's client: the registry image runs it with `mlflow-skinny`, without pandas or
scikit-learn.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..contract import CONTRACT
from ..errors import ModelLoadError
from ..settings import Settings
from .artifact import MANIFEST, REGISTRY_SCHEMES, load_pipeline
from .store import check_server

if TYPE_CHECKING:
    import pandas as pd

ALIAS = "challenger"  # set on every newly registered version
CONTRACT_TAG = "contract"  # version tag: the fingerprint of the contract it was trained on
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


def _model_kwargs(pipeline, sample: pd.DataFrame) -> dict[str, Any]:
    from mlflow.models import infer_signature

    from .export import trusted_types

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
        "skops_trusted_types": trusted_types(pipeline),
    }


def log_model(pipeline, sample: pd.DataFrame) -> str:
    """Log the model to the active run, not yet registered; return its URI."""
    import mlflow

    info = mlflow.sklearn.log_model(pipeline, name="model", **_model_kwargs(pipeline, sample))
    return info.model_uri


def another_contract(model_version) -> bool:
    """Whether a registered version is tagged as trained on another feature contract than this
    project's (a version registered before the tag is not: nothing says so)."""
    tag = (model_version.tags or {}).get(CONTRACT_TAG)
    return tag is not None and tag != CONTRACT.fingerprint()


def register(model_uri: str, settings: Settings) -> str:
    """Register a logged model as a new version, tagged with the fingerprint of the contract it
    was trained on, and alias it; return the version."""
    import mlflow
    from mlflow import MlflowClient

    registered = mlflow.register_model(
        model_uri, settings.registered_model_name, tags={CONTRACT_TAG: CONTRACT.fingerprint()}
    )
    model_version = str(registered.version)
    MlflowClient().set_registered_model_alias(settings.registered_model_name, ALIAS, model_version)
    return model_version


def load_model(uri: str, settings: Settings) -> LoadedModel:
    """Load a pipeline from an export folder or a `models:/NAME@ALIAS` / `runs:/` URI."""
    if uri.startswith(REGISTRY_SCHEMES):
        import mlflow

        mlflow.set_tracking_uri(settings.tracking_uri)
        try:
            pipeline = mlflow.sklearn.load_model(uri)
        except Exception as error:
            hint = " (train, then promote, to create it)" if "@champion" in uri else ""
            raise ModelLoadError(
                f"cannot load model '{uri}' from {settings.tracking_uri}: {error}{hint}"
            ) from error
        return LoadedModel(pipeline, uri, **_registry_details(uri))
    folder = Path(uri)
    if not (folder / MANIFEST).is_file():
        raise ModelLoadError(
            f"no model at '{uri}': expected an exported model folder (run the train command "
            "first) or a models:/NAME@ALIAS URI"
        )
    manifest = json.loads((folder / MANIFEST).read_text())
    return LoadedModel(
        load_pipeline(folder, manifest),
        uri,
        name=manifest.get("name"),
        version=manifest.get("version"),
        run_id=manifest.get("run_id"),
        metrics=manifest.get("metrics", {}),
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


def pull(uri: str, settings: Settings, destination: Path) -> Path:
    """Download the serving export of a registered version (`models:/NAME@ALIAS`) to a folder.

    Lets the service run from the registry without importing MLflow itself.
    """
    import mlflow

    check_server(settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    try:
        details = _registry_details(uri)
    except Exception as error:
        raise ModelLoadError(
            f"cannot resolve '{uri}' on {settings.tracking_uri}: {error}"
        ) from error
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}-"))
    try:
        mlflow.artifacts.download_artifacts(
            run_id=details["run_id"], artifact_path="serving", dst_path=str(staging)
        )
        manifest_path = staging / "serving" / MANIFEST
        if not manifest_path.is_file():
            raise ModelLoadError(f"the run behind '{uri}' holds no serving export")
        if details.get("version") is not None:  # the run logs its export before registering
            manifest = json.loads(manifest_path.read_text())
            manifest["version"] = str(details["version"])
            manifest_path.write_text(json.dumps(manifest, indent=2))
        if destination.exists():
            shutil.rmtree(destination)
        (staging / "serving").rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
