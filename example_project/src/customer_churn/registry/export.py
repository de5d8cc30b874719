"""The serving export: the pipeline (skops), its ONNX graph when it converts and agrees, a
manifest, and the drift reference (training rows with the model's answers on them).

The ONNX graph computes in float32 where scikit-learn uses float64, so tree thresholds can
flip for values right on them. The export measures the difference on the holdout and keeps
the graph only within `onnx_tolerance`; the manifest records the figures either way.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract import CONTRACT
from ..features import features_of, library_of
from .artifact import (
    MANIFEST,
    ONNX_FILE,
    PIPELINE_FILE,
    REFERENCE_FILE,
    ServingModel,
    headline,
    onnx_session,
)

# What a pipeline may hold for skops to load it: scikit-learn and numpy, the gradient
# boosting libraries of model.py's families, and this package's own model module.
TRUSTED_PREFIXES = (
    "sklearn.", "numpy.", "lightgbm.", "xgboost.", "collections.OrderedDict",
    f"{__package__.split('.')[0]}.model.",
)  # fmt: skip


def trusted_types(pipeline) -> list[str]:
    """Types skops must be told to trust when loading this pipeline (see TRUSTED_PREFIXES)."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = [name for name in untrusted if not name.startswith(TRUSTED_PREFIXES)]
    if foreign:
        raise TypeError(f"the pipeline holds types skops is not told to trust: {foreign}")
    return untrusted


def register_converter(model) -> dict[str, int] | None:
    """Teach skl2onnx the model step when it is LightGBM's or XGBoost's (their converters
    are onnxmltools'); return the opsets those converters need, None for scikit-learn's."""
    library = library_of(model)
    if library == "lightgbm":
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as c
    elif library == "xgboost":
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost as c
    else:
        return None
    from skl2onnx import update_registered_converter
    from skl2onnx.common import shape_calculator as shapes

    classifier = CONTRACT.target.kind == "classification"
    update_registered_converter(
        type(model), f"{library}{type(model).__name__}",
        shapes.calculate_linear_classifier_output_shapes
        if classifier else shapes.calculate_linear_regressor_output_shapes,
        c, options={"nocl": [True, False], "zipmap": [True, False]} if classifier else None,
    )  # fmt: skip
    return {"": 17, "ai.onnx.ml": 3}  # the highest these converters write


def _to_onnx(pipeline) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(name, FloatTensorType([None, 1])) for name in CONTRACT.numeric]
    inputs += [(name, StringTensorType([None, 1])) for name in CONTRACT.categorical]
    options = {id(pipeline): {"zipmap": False}} if CONTRACT.target.kind == "classification" else {}
    opsets = register_converter(pipeline.named_steps["model"])
    graph = to_onnx(pipeline, initial_types=inputs, options=options, target_opset=opsets)
    return graph.SerializeToString()


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The feature columns of `frame` as records like validated requests (None for missing)."""
    features = features_of(frame).astype(object)
    return features.where(features_of(frame).notna(), None).to_dict("records")


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """(Re)write the manifest of an export folder, atomically."""
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2))
    temporary.replace(folder / MANIFEST)


def compare(pipeline, session_model, frame: pd.DataFrame) -> dict[str, float]:
    """How far the ONNX graph's answers are from the pipeline's on `frame`."""
    predictions, probabilities = session_model.predict_records(as_records(frame))
    if CONTRACT.target.kind == "classification":
        exact = pipeline.predict_proba(features_of(frame))
        return {
            "max_difference": float(np.max(np.abs(probabilities - exact))),
            "mean_difference": float(np.mean(np.abs(probabilities - exact))),
            "label_agreement": float(np.mean(predictions == pipeline.predict(features_of(frame)))),
        }
    exact = pipeline.predict(features_of(frame))
    scale = float(np.std(frame[CONTRACT.target.name])) or 1.0
    return {
        "max_difference": float(np.max(np.abs(predictions - exact)) / scale),
        "mean_difference": float(np.mean(np.abs(predictions - exact)) / scale),
    }


REFERENCE_ROWS = 10_000


def reference_frame(pipeline, rows: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """What the drift job compares live traffic with: features of (at most `REFERENCE_ROWS`)
    training rows, and the model's predictions on them."""
    if len(rows) > REFERENCE_ROWS:
        rows = rows.sample(REFERENCE_ROWS, random_state=seed)
    reference = features_of(rows).reset_index(drop=True)
    reference["prediction"] = pipeline.predict(features_of(rows))
    if CONTRACT.target.kind == "classification":
        reference["probability"] = headline(pipeline.predict_proba(features_of(rows)))
    return reference


def prediction_shares(predictions: np.ndarray, bounds: list[float] | None) -> dict[str, float]:
    """The share of each outcome the service's `predictions` metric counts (the class, or the
    bucket `q<i>` of the value between `bounds`) among `predictions`: on the drift reference,
    what the dashboard sets the served predictions against."""
    if bounds is None:
        outcomes = [str(label) for label in predictions.tolist()]
    else:
        outcomes = [f"q{bucket}" for bucket in np.searchsorted(bounds, predictions).tolist()]
    keys, counts = np.unique(outcomes, return_counts=True)
    total = len(outcomes)
    return {str(key): round(int(n) / total, 6) for key, n in zip(keys, counts, strict=True)}


STAGING_PREFIX = "."  # staging folders are hidden siblings of the export: `.model-XXXX`


def export_serving_model(
    pipeline,
    holdout: pd.DataFrame,
    target: Path,
    metadata: dict[str, Any],
    tolerance: float,
    reference: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write the serving folder at `target`, replacing any previous one whole; return the manifest.

    `tolerance` bounds the largest difference allowed between ONNX and the pipeline on the
    holdout: in probability for a classifier, in standard deviations of the target otherwise.
    `reference` (the training rows) becomes the drift reference; without it, the holdout does.
    """
    staging = staging_folder(target)
    try:
        folder = staging / "model"
        manifest = build_serving_folder(pipeline, holdout, folder, metadata, tolerance, reference)
        install_serving_folder(folder, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def staging_folder(target: Path) -> Path:
    """A fresh hidden folder beside `target` to build its replacement in (same file system,
    so that the replacement moves in by a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{STAGING_PREFIX}{target.name}-"))


def remove_stale_staging(target: Path) -> list[Path]:
    """Delete what a killed export left beside `target`; return what was deleted."""
    stale = sorted(target.parent.glob(f"{STAGING_PREFIX}{target.name}-*"))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def build_serving_folder(
    pipeline,
    holdout: pd.DataFrame,
    folder: Path,
    metadata: dict[str, Any],
    tolerance: float,
    reference: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write a serving folder at `folder` (which must not exist yet); return its manifest."""
    import skops.io

    folder.mkdir()
    skops.io.dump(pipeline, folder / PIPELINE_FILE)
    manifest = metadata | {
        "problem_type": CONTRACT.target.kind,
        "features": CONTRACT.feature_names,
        "contract": CONTRACT.fingerprint(),
        "classes": getattr(pipeline, "classes_", np.array([])).tolist(),
        "skops_trusted_types": trusted_types(pipeline),
        "onnx": None,
    }
    drift_reference = reference_frame(pipeline, holdout if reference is None else reference)
    drift_reference.to_parquet(folder / REFERENCE_FILE, index=False)
    manifest["reference"] = {"file": REFERENCE_FILE, "rows": len(drift_reference)}
    if CONTRACT.target.kind == "regression":  # bucket bounds of the served-values metric
        deciles = np.quantile(holdout[CONTRACT.target.name], np.linspace(0.1, 0.9, 9))
        manifest["target_quantiles"] = [round(float(q), 6) for q in deciles]
    answers = drift_reference["prediction"].to_numpy()
    manifest["prediction_shares"] = prediction_shares(answers, manifest.get("target_quantiles"))
    try:
        (folder / ONNX_FILE).write_bytes(_to_onnx(pipeline))
    except Exception as error:  # a model skl2onnx cannot convert: serve the pipeline
        manifest["onnx_skipped"] = f"conversion failed: {type(error).__name__}: {error}"
    write_manifest(folder, manifest)
    if (folder / ONNX_FILE).exists():
        graph = ServingModel(folder, manifest, "onnx", _session=onnx_session(folder / ONNX_FILE))
        figures = compare(pipeline, graph, holdout)
        if figures["max_difference"] <= tolerance:
            manifest["onnx"] = {"file": ONNX_FILE, "tolerance": tolerance} | figures
        else:
            (folder / ONNX_FILE).unlink()
            manifest["onnx_skipped"] = (
                f"ONNX differs from the pipeline by up to {figures['max_difference']:.4f} "
                f"on the holdout, more than the tolerance {tolerance}"
            )
        write_manifest(folder, manifest)
    return manifest


def install_serving_folder(folder: Path, target: Path) -> None:
    """Move a finished serving folder to `target`, replacing the previous one whole."""
    previous = folder.parent / "previous"
    if target.exists():
        target.rename(previous)
    try:
        folder.rename(target)
    except OSError:
        if previous.exists():
            previous.rename(target)  # put the old model back rather than leave none
        raise
    shutil.rmtree(previous, ignore_errors=True)
