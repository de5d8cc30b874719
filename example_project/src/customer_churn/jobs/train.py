"""The training job: validate, split, cross-validate, fit, evaluate, then log, export and register.

Every run logs a receipt (receipt.json) with what reproduces it; `reproduce RUN_ID` re-runs
training from one and says whether the metrics match (jobs/reproduce.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..features import features_of
from ..modeling import evaluate, explain
from ..modeling.fit import Fitted, fit_and_evaluate, resources_used, training_threads
from ..modeling.model_card import write_model_card
from ..registry import profile
from ..registry.export import (
    as_records,
    build_serving_folder,
    install_serving_folder,
    remove_stale_staging,
    staging_folder,
    write_manifest,
)
from ..registry.receipt import HOLDOUT_TAG, holdout_key, make_receipt, receipt_tags
from ..registry.store import Preparation
from ..registry.tracking import log_model, register
from ..settings import Settings
from .tune import estimator_for


@dataclass
class TrainResult:
    run_id: str
    model_version: str
    metrics: dict[str, float]
    export_dir: Path
    manifest: dict
    receipt: dict


@dataclass
class Analysis:
    """What training found beyond the metrics, and the report files that show it."""

    findings: evaluate.Findings
    background: list[float] | None
    report_paths: list[Path]


def analyse(fitted: Fitted, settings: Settings) -> Analysis:
    """Explanations, segments and plots of the holdout, written to the reports folder."""
    background = explain.background(fitted.pipeline, fitted.train_frame)
    findings = evaluate.find(
        fitted.pipeline,
        fitted.test_frame,
        settings.seed,
        settings.segment_min_rows,
        background,
        fitted.segments,
    )
    figures = evaluate.make_figures(fitted.pipeline, fitted.test_frame, findings)
    paths = evaluate.write_report(fitted.metrics, figures, settings.reports_dir, findings)
    return Analysis(findings, background, paths)


def log_run(fitted: Fitted, receipt: dict[str, Any], analysis: Analysis, settings: Settings) -> str:
    """Parameters, receipt, metrics and reports into the active MLflow run; the model's URI."""
    import mlflow

    model_params = fitted.pipeline.named_steps["model"].get_params()
    mlflow.log_params(
        {f"model.{k}": v for k, v in model_params.items()}
        | {
            "seed": settings.seed,
            "test_size": settings.test_size,
            "cv_folds": settings.cv_folds,
            "rows_train": len(fitted.train_frame),
            "rows_test": len(fitted.test_frame),
        }
    )
    holdout = holdout_key(settings, receipt["data_sha256"])
    mlflow.set_tags(receipt_tags(receipt) | {HOLDOUT_TAG: holdout})
    mlflow.log_dict(receipt, "receipt.json")
    mlflow.log_metrics(fitted.metrics)
    for path in analysis.report_paths:
        mlflow.log_artifact(str(path), artifact_path="reports")
    return log_model(fitted.pipeline, features_of(fitted.train_frame))


def build_export(
    folder: Path, fitted: Fitted, metadata: dict[str, Any], settings: Settings, on_step
) -> dict[str, Any]:
    """The serving export in `folder` (ONNX graph when it agrees, exact pipeline, drift
    reference) with its production profile; its manifest."""
    import mlflow

    manifest = build_serving_folder(
        fitted.pipeline,
        fitted.test_frame,
        folder,
        metadata,
        settings.onnx_tolerance,
        reference=fitted.train_frame,
    )
    on_step("Profiling the serving export: latency, size and memory")
    manifest["profile"] = profile.measure(
        folder,
        as_records(fitted.test_frame),
        settings.profile_single_runs,
        settings.profile_batch_size,
        settings.profile_batch_runs,
    )
    write_manifest(folder, manifest)
    mlflow.log_metrics(profile.summary(manifest["profile"]))
    mlflow.log_artifacts(str(folder), artifact_path="serving")
    return manifest


def export_and_register(
    run_id: str,
    model_uri: str,
    fitted: Fitted,
    receipt: dict[str, Any],
    analysis: Analysis,
    settings: Settings,
    on_step: Callable[[str], None],
) -> tuple[str, dict[str, Any], Path]:
    """Build the export in a hidden folder, register the model, write its card, then move the
    export into place by a rename; the version, the manifest and the card's path.

    Registering is the last step, once every artifact is complete: training killed before it
    leaves no version in the registry, and no half-built export in place.
    """
    on_step(f"Exporting the serving model (for {settings.export_dir})")
    remove_stale_staging(settings.export_dir)
    staging = staging_folder(settings.export_dir)
    try:
        folder = staging / "model"
        metadata = {
            "name": settings.registered_model_name,
            "version": None,  # known once registered, below
            "run_id": run_id,
            "metrics": fitted.metrics,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_commit": receipt["git_commit"],
            "explanation": {
                "library": "shap",
                "output": analysis.findings.output_space,
                "background": analysis.background,
            },
        }
        manifest = build_export(folder, fitted, metadata, settings, on_step)
        on_step(f"Registering the model as '{settings.registered_model_name}'")
        model_version = register(model_uri, settings)
        manifest["version"] = metadata["version"] = model_version
        write_manifest(folder, manifest)
        card = write_model_card(
            settings.reports_dir / "model_card.md",
            fitted,
            metadata,
            receipt,
            analysis.report_paths,
            analysis.findings,
            manifest["profile"],
        )
        # The card travels with the export, so that a service shows the card of its model.
        shutil.copyfile(card, folder / card.name)
        install_serving_folder(folder, settings.export_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model_version, manifest, card


def train(
    settings: Settings,
    on_step: Callable[[str], None] = lambda _: None,
    store: Preparation | None = None,
) -> TrainResult:
    """Train on `settings.data_path`; log, register and export the model; return what happened.

    `store` is the tracking store's set-up, started already (by the command line, before it
    imports this module); without it, it starts here.
    """
    on_step(f"Connecting to the tracking server at {settings.tracking_uri}")
    # The store gets ready in a child process while the data loads and the model fits; a
    # server that is away fails at once, a store that cannot be set up at the next step.
    with store or Preparation(settings) as store:

        def step(description: str) -> None:
            store.check()
            on_step(description)

        estimator, tuned = estimator_for(settings)
        receipt = make_receipt(settings, estimator) | {"tuned": tuned}
        if tuned:
            on_step(
                f"Using the hyperparameters in {settings.tuned_params_path} (trial "
                f"{tuned['trial']} of study '{tuned['study']}', {tuned['metric']} "
                f"{tuned['value']:.4f})"
            )
        usage: dict[str, float] = {}
        with resources_used(usage):
            fitted = fit_and_evaluate(settings, estimator, step)
            step("Explaining the model and plotting the holdout")
            with training_threads(len(fitted.train_frame) + len(fitted.test_frame)):
                analysis = analyse(fitted, settings)
        on_step(f"Logging the run to {settings.tracking_uri} and registering the model")
        store.finish()

    import mlflow  # once the child has imported it: its modules are compiled by then

    with mlflow.start_run() as run:
        mlflow.log_metrics(usage)  # fitting and analysis, before the run
        model_uri = log_run(fitted, receipt, analysis, settings)
        version, manifest, card = export_and_register(
            run.info.run_id, model_uri, fitted, receipt, analysis, settings, on_step
        )
        mlflow.log_artifact(str(card), artifact_path="serving")
        mlflow.log_dict(manifest, "serving_manifest.json")
        mlflow.log_artifact(str(card), artifact_path="reports")
    return TrainResult(
        run.info.run_id, version, fitted.metrics, settings.export_dir, manifest, receipt
    )
