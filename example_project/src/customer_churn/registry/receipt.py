"""The receipt of a training run: what reproduces it (code, environment, data, seed, every
parameter), logged as receipt.json and as tags beside the model."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..settings import Settings

RECORDED_PACKAGES = (
    "scikit-learn",
    "pandas",
    "numpy",
    "mlflow",
    "skl2onnx",
    "onnxruntime",
    "shap",
)


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
        # A missing file is the data loader's one-line error, a moment later.
        "data_sha256": file_sha256(settings.data_path) if settings.data_path.is_file() else None,
        "seed": settings.seed,
        "test_size": settings.test_size,
        "cv_folds": settings.cv_folds,
        "estimator": type(estimator).__name__,
        "model_params": json.loads(json.dumps(estimator.get_params(), default=str)),
        "python": platform.python_version(),
        "packages": {dist: _installed(dist) for dist in RECORDED_PACKAGES},
    }


HOLDOUT_TAG = "holdout"  # on a run: the holdout its figures were scored on (holdout_key)


def holdout_key(settings: Settings, data_sha256: str | None = None) -> str:
    """What decides the holdout's rows and their segments: the data file's digest, the split
    (seed and size) and the segment rule. Runs of one key scored the same rows the same way."""
    digest = data_sha256 or file_sha256(settings.data_path)
    return f"{digest}:{settings.seed}:{settings.test_size}:{settings.segment_min_rows}"


def receipt_tags(receipt: dict[str, Any]) -> dict[str, str]:
    """The receipt as run tags (searchable in MLflow), its parameters left to receipt.json."""
    return {f"receipt.{key}": str(receipt[key]) for key in receipt if key != "model_params"} | {
        "data_sha256": receipt["data_sha256"],
        "git_commit": receipt["git_commit"],
    }
