"""Training: validate, split, cross-validate, fit, evaluate, then log, export and register.

Every run logs a receipt (receipt.json) with what reproduces it; `reproduce RUN_ID` re-runs
training from one and says whether the metrics match.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import cross_validate

from . import evaluate, explain, profiling
from .card import write_model_card
from .contract import CONTRACT
from .errors import ProjectError
from .export import (
    as_records,
    build_serving_folder,
    install_serving_folder,
    remove_stale_staging,
    staging_folder,
    write_manifest,
)
from .features import build_pipeline, features_of
from .ingest import load_table, split
from .model import build_estimator
from .register import configure_tracking, log_model, register
from .segments import SegmentReport, report_for
from .settings import Settings
from .validate import validate

RECORDED_PACKAGES = (
    "scikit-learn",
    "pandas",
    "numpy",
    "mlflow",
    "skl2onnx",
    "onnxruntime",
    "shap",
)


@dataclass
class Fitted:
    pipeline: Any
    train_frame: pd.DataFrame
    test_frame: pd.DataFrame
    metrics: dict[str, float]
    segments: SegmentReport


@dataclass
class TrainResult:
    run_id: str
    model_version: str
    metrics: dict[str, float]
    export_dir: Path
    manifest: dict
    receipt: dict


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:  # fixed arguments, no shell
        out = subprocess.run(  # noqa: S603
            [git, *args], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> str:
    """The commit of the working folder, or 'unknown' outside a git repository."""
    return _git("rev-parse", "HEAD") or "unknown"


def _installed(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def make_receipt(settings: Settings, estimator) -> dict[str, Any]:
    """What reproduces a run: code, environment, data, seed and every parameter."""
    lock = Path("uv.lock")
    return {
        "git_commit": git_commit(),
        "git_dirty": bool(_git("status", "--porcelain")),
        "lock_sha256": file_sha256(lock) if lock.is_file() else None,
        "data_path": str(settings.data_path),
        "data_sha256": file_sha256(settings.data_path),
        "seed": settings.seed,
        "test_size": settings.test_size,
        "cv_folds": settings.cv_folds,
        "estimator": type(estimator).__name__,
        "model_params": json.loads(json.dumps(estimator.get_params(), default=str)),
        "python": platform.python_version(),
        "packages": {dist: _installed(dist) for dist in RECORDED_PACKAGES},
    }


def fit_and_evaluate(
    settings: Settings, estimator, on_step: Callable[[str], None] = lambda _: None
) -> Fitted:
    """Validate and split the data, cross-validate, fit on the training split, score the holdout."""
    on_step(f"Loading and validating {settings.data_path}")
    frame = validate(load_table(settings.data_path))
    train_frame, test_frame = split(frame, settings.test_size, settings.seed)
    x_train, y_train = features_of(train_frame), train_frame[CONTRACT.target.name]
    pipeline = build_pipeline(estimator)

    on_step(f"Cross-validating on {len(train_frame)} rows ({settings.cv_folds} folds)")
    scores = cross_validate(
        pipeline, x_train, y_train, cv=settings.cv_folds, scoring=evaluate.CV_SCORING
    )
    metrics = evaluate.cv_summary(scores)

    on_step("Fitting on the training split")
    pipeline.fit(x_train, y_train)

    on_step(f"Evaluating on the {len(test_frame)}-row holdout")
    segments = report_for(pipeline, test_frame, settings.segment_min_rows)
    holdout = evaluate.compute_metrics(pipeline, test_frame) | segments.metrics()
    metrics |= {f"test_{name}": value for name, value in holdout.items()}
    return Fitted(pipeline, train_frame, test_frame, metrics, segments)


def train(settings: Settings, on_step: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Train on `settings.data_path`; log, register and export the model; return what happened."""
    import mlflow

    on_step(f"Connecting to the tracking server at {settings.tracking_uri}")
    configure_tracking(settings)  # fails fast, before any training, when the server is away
    estimator = build_estimator(settings.seed)
    receipt = make_receipt(settings, estimator)
    fitted = fit_and_evaluate(settings, estimator, on_step)
    pipeline, metrics = fitted.pipeline, fitted.metrics
    on_step("Explaining the model and plotting the holdout")
    background = explain.background(pipeline, fitted.train_frame)
    findings = evaluate.find(
        pipeline,
        fitted.test_frame,
        settings.seed,
        settings.segment_min_rows,
        background,
        fitted.segments,
    )
    figures = evaluate.make_figures(pipeline, fitted.test_frame, findings)
    report_paths = evaluate.write_report(metrics, figures, settings.reports_dir, findings)

    on_step(f"Logging the run to {settings.tracking_uri} and registering the model")
    with mlflow.start_run() as run:
        mlflow.log_params(
            {f"model.{k}": v for k, v in pipeline.named_steps["model"].get_params().items()}
            | {
                "seed": settings.seed,
                "test_size": settings.test_size,
                "cv_folds": settings.cv_folds,
                "rows_train": len(fitted.train_frame),
                "rows_test": len(fitted.test_frame),
            }
        )
        mlflow.set_tags(
            {f"receipt.{key}": str(receipt[key]) for key in receipt if key != "model_params"}
            | {"data_sha256": receipt["data_sha256"], "git_commit": receipt["git_commit"]}
        )
        mlflow.log_dict(receipt, "receipt.json")
        mlflow.log_metrics(metrics)
        for path in report_paths:
            mlflow.log_artifact(str(path), artifact_path="reports")
        model_uri = log_model(pipeline, features_of(fitted.train_frame))

        # Registering is the last step, once every artifact is complete: training killed
        # before it leaves no version in the registry, and no half-built export in place
        # (the export is built in a hidden folder beside it and moved in by a rename).
        on_step(f"Exporting the serving model (for {settings.export_dir})")
        remove_stale_staging(settings.export_dir)
        staging = staging_folder(settings.export_dir)
        try:
            folder = staging / "model"
            metadata = {
                "name": settings.registered_model_name,
                "version": None,  # known once registered, below
                "run_id": run.info.run_id,
                "metrics": metrics,
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "git_commit": receipt["git_commit"],
                "explanation": {
                    "library": "shap",
                    "output": findings.output_space,
                    "background": background,
                },
            }
            manifest = build_serving_folder(
                pipeline,
                fitted.test_frame,
                folder,
                metadata,
                settings.onnx_tolerance,
                reference=fitted.train_frame,
            )
            on_step("Profiling the serving export: latency, size and memory")
            manifest["profile"] = profiling.measure(
                folder,
                as_records(fitted.test_frame),
                settings.profile_single_runs,
                settings.profile_batch_size,
                settings.profile_batch_runs,
            )
            write_manifest(folder, manifest)
            mlflow.log_metrics(profiling.summary(manifest["profile"]))
            mlflow.log_artifacts(str(folder), artifact_path="serving")

            on_step(f"Registering the model as '{settings.registered_model_name}'")
            model_version = register(model_uri, settings)
            manifest["version"] = metadata["version"] = model_version
            write_manifest(folder, manifest)
            card = write_model_card(
                settings.reports_dir / "model_card.md",
                fitted,
                metadata,
                receipt,
                report_paths,
                findings,
                manifest["profile"],
            )
            # The card travels with the export, so that a service shows the card of its model.
            shutil.copyfile(card, folder / card.name)
            install_serving_folder(folder, settings.export_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        mlflow.log_artifact(str(card), artifact_path="serving")
        mlflow.log_dict(manifest, "serving_manifest.json")
        mlflow.log_artifact(str(card), artifact_path="reports")
    return TrainResult(
        run.info.run_id, model_version, metrics, settings.export_dir, manifest, receipt
    )


@dataclass
class Reproduction:
    run_id: str
    rows: list[tuple[str, float, float, bool]]  # metric, recorded, reproduced, equal

    @property
    def matches(self) -> bool:
        return all(equal for *_, equal in self.rows)


def reproduce(run_id: str, settings: Settings, tolerance: float = 1e-9) -> Reproduction:
    """Re-run the training of `run_id` from its receipt (without logging) and compare metrics."""
    import mlflow
    from mlflow import MlflowClient

    configure_tracking(settings)
    try:
        receipt = mlflow.artifacts.load_dict(f"runs:/{run_id}/receipt.json")
        recorded = MlflowClient().get_run(run_id).data.metrics
    except Exception as error:
        raise ProjectError(f"no receipt for run '{run_id}': {error}") from None
    data_path = Path(receipt["data_path"])
    if not data_path.is_file() or file_sha256(data_path) != receipt["data_sha256"]:
        raise ProjectError(
            f"{data_path} is not the file run {run_id} was trained on (its SHA-256 differs): "
            "restore that data to reproduce the run"
        )
    again = settings.model_copy(
        update={
            "data_path": data_path,
            "seed": receipt["seed"],
            "test_size": receipt["test_size"],
            "cv_folds": receipt["cv_folds"],
        }
    )
    params = {k: v for k, v in receipt["model_params"].items() if k != "random_state"}
    fitted = fit_and_evaluate(again, build_estimator(again.seed, **params))
    rows = []
    for name in sorted(fitted.metrics):
        old, new = recorded[name], fitted.metrics[name]
        rows.append((name, old, new, abs(old - new) <= tolerance * max(1.0, abs(old))))
    return Reproduction(run_id, rows)
