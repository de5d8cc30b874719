"""Batch prediction: a CSV or Parquet file in, its rows with predictions out, written atomically."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..contract import CONTRACT
from ..data.ingest import load_table, write_table
from ..data.validate import validate
from ..features import features_of
from ..registry.artifact import headline
from ..registry.tracking import LoadedModel

CHUNK_ROWS = 50_000


def predict_frame(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions for the rows of `frame` (already validated), indexed like it."""
    features = features_of(frame)
    result = pd.DataFrame({"prediction": model.pipeline.predict(features)}, index=frame.index)
    probabilities = model.pipeline.predict_proba(features)
    result["probability"] = headline(probabilities)  # the positive (or predicted) class's
    if CONTRACT.target.multiclass:
        for column, label in enumerate(CONTRACT.target.labels):
            result[f"probability_{label}"] = probabilities[:, column]
    return result


def predict_file(
    model: LoadedModel,
    input_path: Path,
    output_path: Path,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Validate `input_path`, predict every row, write `output_path`; return the row count.

    Nothing is written unless every row is valid and scored.
    """
    frame = validate(load_table(input_path), require_target=False)
    parts = []
    for start in range(0, len(frame), CHUNK_ROWS):
        parts.append(predict_frame(model, frame.iloc[start : start + CHUNK_ROWS]))
        on_progress(min(start + CHUNK_ROWS, len(frame)), len(frame))
    predictions = pd.concat(parts)
    kept = [c for c in frame.columns if c != CONTRACT.target.name]
    write_table(pd.concat([frame[kept], predictions], axis=1), output_path)
    return len(frame)
