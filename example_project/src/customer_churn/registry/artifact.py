"""The serving runtime: a trained model behind one call, loaded without pandas, sklearn or MLflow.

Training exports a folder (see export.py) holding `serving.json`, `model.onnx` when the
pipeline converted and agreed with itself on the holdout, and `pipeline.skops`. The service
runs the ONNX graph on arrays built straight from validated requests; without it, or when
`serving_backend` is "sklearn", it falls back to the exact pipeline and says why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import CONTRACT
from ..errors import ModelLoadError

MANIFEST = "serving.json"
ONNX_FILE = "model.onnx"
PIPELINE_FILE = "pipeline.skops"
REFERENCE_FILE = "reference.parquet"  # the drift reference; serving never reads it
REGISTRY_SCHEMES = ("models:/", "runs:/")  # URIs MLflow resolves; anything else is a folder
log = logging.getLogger(__name__)


def to_columns(records: list[dict[str, Any]], numeric_dtype=np.float32) -> dict[str, np.ndarray]:
    """Validated records -> one (n, 1) array per feature: numbers, and string categories.

    A missing number becomes NaN (the pipeline imputes it); a missing category becomes "",
    which no category matches, as for the pipeline.
    """
    columns: dict[str, np.ndarray] = {}
    for name in CONTRACT.numeric:
        values = [record[name] for record in records]
        columns[name] = np.array(
            [np.nan if value is None else value for value in values], dtype=numeric_dtype
        ).reshape(-1, 1)
    for name in CONTRACT.categorical:
        values = [record[name] or "" for record in records]
        columns[name] = np.array(values, dtype=object).reshape(-1, 1)
    return columns


@dataclass
class ServingModel:
    """A loaded model: `predict(columns)` returns predictions and, for classifiers, the
    probability of every class (one column per class, in the order of the contract's
    `labels`)."""

    folder: Path
    manifest: dict[str, Any]
    backend: str
    reason: str = ""
    source: str = ""
    from_cache: bool = False  # served from an earlier pull, the registry not asked yet
    _session: Any = field(default=None, repr=False)
    _pipeline: Any = field(default=None, repr=False)
    _explainer: Any = field(default=None, repr=False)  # built by explain.py on first use
    _run: Any = field(default=None, repr=False, init=False)  # the session's run, see below

    def __post_init__(self) -> None:
        if self._session is not None:
            self._run = onnx_runner(self._session)

    @property
    def version(self) -> str | None:
        return self.manifest.get("version")

    def predict_records(
        self, records: list[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (and class probabilities for classifiers) of validated records.

        The ONNX graph takes float32 numbers; the exact pipeline keeps them as float64.
        """
        dtype = np.float32 if self._session is not None else np.float64
        return self.predict(to_columns(records, dtype))

    def predict(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        if self._session is not None:
            outputs = self._run(columns)
            if CONTRACT.target.kind == "classification":
                return outputs[0].ravel(), outputs[1].astype(np.float64)
            return outputs[0].ravel().astype(np.float64), None
        import pandas as pd  # the fallback path only

        frame = pd.DataFrame({name: values.ravel() for name, values in columns.items()})
        frame[CONTRACT.categorical] = frame[CONTRACT.categorical].replace("", None)
        predictions = self._pipeline.predict(frame)
        if CONTRACT.target.kind == "classification":
            return predictions, self._pipeline.predict_proba(frame)
        return predictions.astype(np.float64), None


def headline(probabilities: np.ndarray | None) -> np.ndarray | None:
    """One probability per row: of the positive class for a binary target, of the predicted
    (most probable) class for more classes. The API's `probability`, the prediction log and
    the drift of scores carry this one."""
    if probabilities is None:
        return None
    if CONTRACT.target.multiclass:
        return probabilities.max(axis=1)
    return probabilities[:, -1]


def check_contract(manifest: dict[str, Any], where: object) -> None:
    """Refuse, in one line, a model trained on another feature contract than this one."""
    fingerprint = manifest.get("contract")  # absent from exports made before fingerprints
    if manifest.get("features") != CONTRACT.feature_names:
        found = f"features {manifest.get('features')}"
        declared = f"declares {CONTRACT.feature_names}"
    elif fingerprint is not None and fingerprint != CONTRACT.fingerprint():
        found = f"contract {fingerprint} (classes {manifest.get('classes')})"
        declared = f"is {CONTRACT.fingerprint()} (classes {CONTRACT.target.labels})"
    else:
        return
    raise ModelLoadError(
        f"the model at '{where}' was trained on {found}, but this project's contract "
        f"{declared}: train a model on this contract (or serve with the contract it had)"
    )


def load_serving_model(folder: str | Path, backend: str = "onnx") -> ServingModel:
    """Load an exported serving folder; `backend` "onnx" falls back to "sklearn" when it must."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelLoadError(
            f"no model at '{folder}': expected a folder with {MANIFEST} (run the train command "
            "first, or `pull` a registered version)"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{manifest_path} cannot be read: {error}") from error
    check_contract(manifest, folder)
    onnx = manifest.get("onnx") or {}
    if backend == "onnx" and onnx and (folder / ONNX_FILE).is_file():
        try:
            return ServingModel(folder, manifest, "onnx", _session=onnx_session(folder / ONNX_FILE))
        except Exception as error:  # a corrupt graph: serve exactly, and say so
            reason = f"model.onnx cannot be loaded ({error})"
    elif backend == "onnx":
        reason = manifest.get("onnx_skipped") or "the export holds no ONNX graph"
    else:
        reason = "serving_backend is 'sklearn'"
    log.warning("serving with the scikit-learn pipeline: %s", reason)
    return ServingModel(
        folder,
        manifest,
        "sklearn",
        reason,
        _pipeline=single_threaded(load_pipeline(folder, manifest)),
    )


def single_threaded(pipeline):
    """The pipeline with its model answering on one thread: a random forest trained with
    `n_jobs=-1` starts a pool on every call, which put a single record at 90 ms p99 here
    against a few ms on one thread (the service answers small requests, one per worker)."""
    model = pipeline.steps[-1][1]
    if "n_jobs" in model.get_params():
        model.set_params(n_jobs=1)
    return pipeline


def onnx_session(path: Path):
    """An ONNX Runtime session on one thread: for tiny requests threads cost more than they save."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_runner(session) -> Callable[[dict[str, np.ndarray]], list]:
    """The session's `run` for all its outputs. Where ONNX Runtime has its usual inner
    session, it is called directly: the Python wrapper's checks on every call (input names,
    graph capture, device ownership) cost about 3 us of a 15 us call here, and the inner run
    checks the inputs itself."""
    names = [output.name for output in session.get_outputs()]
    inner = getattr(getattr(session, "_sess", None), "run", None)
    if inner is None:
        return lambda columns: session.run(names, columns)
    return lambda columns: inner(names, columns, None)


def load_pipeline(folder: Path, manifest: dict[str, Any] | None = None):
    """The exact scikit-learn pipeline of an export folder (`manifest`: its serving.json)."""
    path = folder / PIPELINE_FILE
    if not path.is_file():
        raise ModelLoadError(f"no {PIPELINE_FILE} in '{folder}': re-export the model")
    try:
        import skops.io
    except ImportError as error:  # a lean serving image, built for a model with a graph
        raise ModelLoadError(
            f"the model at '{folder}' needs the exact scikit-learn pipeline, but this install "
            f"lacks the `exact` dependency group ({error.name} is missing): install it with "
            "`uv sync --group exact`, or serve a model exported with an ONNX graph"
        ) from error

    if manifest is None:
        manifest = json.loads((folder / MANIFEST).read_text())
    trusted = manifest.get("skops_trusted_types", [])
    try:
        return skops.io.load(path, trusted=trusted)
    except Exception as error:
        raise ModelLoadError(f"{path} cannot be loaded: {error}") from error
