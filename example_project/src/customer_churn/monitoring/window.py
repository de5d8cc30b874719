"""The prediction log as frames: the window of served records the drift job compares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..contract import CONTRACT
from ..errors import DataError
from ..service.prediction_log import read_log
from ..service.rollout import CHAMPION

LOGGED = (
    "request_id",
    "row",
    "model_version",
    "time",
    "latency_ms",
    "prediction",
    "probability",
    "probabilities",  # beyond two classes: one per class
)


def served_column() -> str:
    """The column whose distribution stands for the predictions: P(class 1), or the value."""
    return "probability" if CONTRACT.target.kind == "classification" else "prediction"


def frame_of(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Logged records as a frame: features, prediction, ids and the variant that made it."""
    frame = pd.DataFrame([r["inputs"] for r in records], columns=CONTRACT.feature_names)
    for key in LOGGED:
        frame[key] = [r.get(key) for r in records]
    frame["variant"] = [r.get("variant", CHAMPION) for r in records]
    return frame


def logged_window(
    log_dir: Path, window: int, minimum: int, records: list[dict[str, Any]] | None = None
) -> tuple[pd.DataFrame, int]:
    """The last `window` records the callers saw (shadow scores left out) as a frame, and the
    number of unreadable lines skipped."""
    unreadable = 0
    if records is None:
        records, unreadable = read_log(log_dir)
    served = [r for r in records if not r.get("shadow")]
    if len(served) < minimum:
        raise DataError(
            f"the prediction log in '{log_dir}' holds {len(served)} records; the drift job "
            f"needs at least {minimum} (setting drift_min_records): send traffic first"
        )
    return frame_of(served[-window:]), unreadable


def logged_probabilities(frame: pd.DataFrame):
    """What the log holds of the class probabilities of `frame`'s records: every class's
    (beyond two classes, when logged for every record), else the one `probability`."""
    every = frame.get("probabilities")
    if every is not None and len(frame) and every.notna().all():
        return np.array(every.tolist(), dtype=float)
    return frame.get("probability")
