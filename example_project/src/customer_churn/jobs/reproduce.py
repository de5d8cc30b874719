"""Reproduction: re-run the training of a logged run from its receipt and compare the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ProjectError
from ..model import build_estimator
from ..modeling.fit import fit_and_evaluate
from ..registry.receipt import file_sha256
from ..registry.store import configure_tracking
from ..settings import Settings


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
