"""The data commands: generate a synthetic dataset, check a file against the contract, draft a
contract from a file."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ..settings import ENV_PREFIX
from .shared import console, load_settings

if TYPE_CHECKING:  # the data modules import pandas: only the commands that need them do
    from ..data.infer import Draft


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


contract = typer.Typer(help="Draft the feature contract from your data.", no_args_is_help=True)


@contract.command()
def init(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file of your data")],
    target: Annotated[str, typer.Option(help="The column to predict")],
    identifier: Annotated[
        str | None, typer.Option("--id", help="A column that names rows, carried through")
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option(help="A column to leave out (repeatable)")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace a contract.py that was edited")] = False,
    output: Annotated[Path | None, typer.Option(help="Where to write (default: contract.py)")] = (
        None
    ),
) -> None:
    """Write contract.py from a table: one feature a column, ranges and categories from the data."""
    from .. import contract as current
    from ..data.contract_file import render, write
    from ..data.infer import draft
    from ..data.ingest import load_table

    kind = current.CONTRACT.target.kind  # the rest of the project is rendered for it
    drafted = draft(load_table(path), target, kind, identifier=identifier, drop=tuple(drop or ()))
    written = write(render(drafted, path.name), output or Path(current.__file__), force=force)
    _summarize(drafted, written)
    if output is None:
        use_data_path(path)


def use_data_path(path: Path, env_file: Path = Path(".env")) -> None:
    """Point the project's `data_path` at `path` in the .env file (its other lines kept),
    unless the settings already name that file."""
    if load_settings().data_path.resolve() == path.resolve():
        return
    key = f"{ENV_PREFIX}DATA_PATH"
    lines = env_file.read_text().splitlines() if env_file.is_file() else []
    lines = [line for line in lines if not line.strip().startswith(f"{key}=")]
    lines.append(f"{key}={path}")
    temporary = env_file.with_name(f".{env_file.name}.tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.replace(env_file)
    console.print(f"  {env_file}: {key}={path} (the data every command reads)")


def _summarize(drafted: "Draft", written: Path) -> None:
    """What was found, what to look at, and what to do next."""
    features, target = drafted.contract.features, drafted.contract.target
    numeric = [f.name for f in features if f.name in drafted.contract.numeric]
    categorical = drafted.contract.categorical
    console.print(f"wrote {written}: {len(features)} features from {drafted.rows} rows")
    console.print(f"  numeric ({len(numeric)}): {', '.join(numeric) or '-'}")
    console.print(f"  categorical ({len(categorical)}): {', '.join(categorical) or '-'}")
    if target.kind == "classification":
        console.print(f"  target {target.name}: classes {', '.join(map(str, target.classes))}")
    else:
        console.print(f"  target {target.name}: numbers from {target.minimum} to {target.maximum}")
    if drafted.missing_targets:
        console.print(f"  {drafted.missing_targets} rows have no target: training skips them")
    for warning in drafted.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    console.print(
        'next: replace each "TODO: describe" in the contract with what the column means, '
        "check the ranges, then `make run`"
    )
