"""The data commands: generate a synthetic dataset, check a file against the contract."""

from pathlib import Path
from typing import Annotated

import typer

from .shared import console, load_settings


def data(
    rows: Annotated[int, typer.Option(min=1, help="Number of rows to generate")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same rows")] = 42,
    output: Annotated[
        Path | None, typer.Option(help="CSV or Parquet file (default: data_path)")
    ] = None,
) -> None:
    """Generate a synthetic dataset that follows the feature contract."""
    from ..data.ingest import write_table
    from ..synthetic import generate

    target = output or load_settings().data_path
    write_table(generate(rows, seed), target)
    console.print(f"wrote {rows} rows to {target}")


def validate(
    path: Annotated[
        Path | None, typer.Argument(help="CSV or Parquet file (default: data_path)")
    ] = None,
    labelled: Annotated[bool, typer.Option(help="Require the target column")] = True,
) -> None:
    """Check a data file against the feature contract."""
    from ..data.ingest import load_table
    from ..data.validate import validate as check

    path = path or load_settings().data_path
    frame = check(load_table(path), require_target=labelled)
    console.print(f"{path}: {len(frame)} rows follow the feature contract")
