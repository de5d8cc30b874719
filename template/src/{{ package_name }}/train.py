"""Training: validate, split, cross-validate, fit, evaluate, then log, register and export."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sklearn.model_selection import cross_validate

from . import evaluate
from .contract import CONTRACT
from .export import export_serving_model
from .features import build_pipeline, features_of
from .ingest import load_table, split
from .model import build_estimator
from .register import configure_tracking, log_and_register
from .settings import Settings
from .validate import validate


@dataclass
class TrainResult:
    run_id: str
    model_version: str
    metrics: dict[str, float]
    export_dir: Path
    manifest: dict


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    """The commit of the working folder, or 'unknown' outside a git repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def train(settings: Settings, on_step: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Train on `settings.data_path`; log, register and export the model; return what happened."""
    on_step(f"Loading and validating {settings.data_path}")
    frame = validate(load_table(settings.data_path))
    train_frame, test_frame = split(frame, settings.test_size, settings.seed)
    x_train, y_train = features_of(train_frame), train_frame[CONTRACT.target.name]
    pipeline = build_pipeline(build_estimator(settings.seed))

    on_step(f"Cross-validating on {len(train_frame)} rows ({settings.cv_folds} folds)")
    scores = cross_validate(
        pipeline, x_train, y_train, cv=settings.cv_folds, scoring=evaluate.CV_SCORING
    )
    metrics = evaluate.cv_summary(scores)

    on_step("Fitting on the training split")
    pipeline.fit(x_train, y_train)

    on_step(f"Evaluating on the {len(test_frame)}-row holdout")
    metrics |= {
        f"test_{name}": value
        for name, value in evaluate.compute_metrics(pipeline, test_frame).items()
    }
    figures = evaluate.make_figures(pipeline, test_frame, settings.seed)
    report_paths = evaluate.write_report(metrics, figures, settings.reports_dir)

    on_step(f"Logging the run to {settings.tracking_uri} and registering the model")
    import mlflow

    commit = git_commit()
    configure_tracking(settings)
    with mlflow.start_run() as run:
        mlflow.log_params(
            {f"model.{k}": v for k, v in pipeline.named_steps["model"].get_params().items()}
            | {
                "seed": settings.seed,
                "test_size": settings.test_size,
                "cv_folds": settings.cv_folds,
                "rows_train": len(train_frame),
                "rows_test": len(test_frame),
            }
        )
        mlflow.set_tags(
            {
                "estimator": type(pipeline.named_steps["model"]).__name__,
                "data_path": str(settings.data_path),
                "data_sha256": file_sha256(settings.data_path),
                "git_commit": commit,
                "python_version": platform.python_version(),
            }
        )
        mlflow.log_metrics(metrics)
        for path in report_paths:
            mlflow.log_artifact(str(path), artifact_path="reports")
        model_version = log_and_register(pipeline, x_train, settings)

        on_step(f"Exporting the serving model to {settings.export_dir}")
        metadata = {
            "name": settings.registered_model_name,
            "version": model_version,
            "run_id": run.info.run_id,
            "metrics": metrics,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_commit": commit,
        }
        manifest = export_serving_model(
            pipeline, test_frame, settings.export_dir, metadata, settings.onnx_tolerance
        )
        mlflow.log_artifacts(str(settings.export_dir), artifact_path="serving")
        mlflow.log_dict(manifest, "serving_manifest.json")
    return TrainResult(run.info.run_id, model_version, metrics, settings.export_dir, manifest)
