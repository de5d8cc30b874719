"""The `predict` command: score every row of a file."""

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn

from ..settings import Settings
from .shared import console, load_settings


def predict(
    input_path: Annotated[Path, typer.Argument(help="CSV or Parquet file of records")],
    output_path: Annotated[Path, typer.Argument(help="CSV or Parquet file to write")],
    model_uri: Annotated[str | None, typer.Option(help="Export folder or models:/ URI")] = None,
) -> None:
    """Predict every row of a file; the output is written only once all rows are scored."""
    _predict_here(load_settings(), input_path, output_path, model_uri)


def _predict_here(
    settings: Settings, input_path: Path, output_path: Path, model_uri: str | None
) -> None:
    """Score the file in this process, with a progress bar of the rows done."""
    from ..jobs.predict import predict_file
    from ..registry.tracking import load_model

    model = load_model(model_uri or settings.model_source, settings)
    with Progress(
        TextColumn("Predicting"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rows"),
        console=console,
    ) as progress:
        task = progress.add_task("predict", total=None)
        count = predict_file(
            model,
            input_path,
            output_path,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"wrote {count} predictions to {output_path}")
