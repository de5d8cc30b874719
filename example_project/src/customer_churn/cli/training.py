"""The model commands: train, promote, roll back, the champion's history, reproduce, evaluate
and pull a registered version. `train` and `promote` notify (jobs/notify.py) when they fail or
the gate refuses."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .shared import console, load_settings


def train(
    promote: Annotated[
        bool,
        typer.Option(
            "--promote",
            help="Then put the new version through the promotion gate, as `promote` does "
            "(in the same process: the libraries are imported once).",
        ),
    ] = False,
) -> None:
    """Train, evaluate, log to MLflow, register a version and export it for serving."""
    settings = load_settings()
    command = "train --promote" if promote else "train"
    with _notified(settings, command):
        result = _train(settings)
        if promote:
            _gate(settings, command, result.run_id)


def _train(settings):
    """Train, printing the steps, then the figures and where the model went."""
    from ..registry.store import Preparation

    # The tracking store gets ready in a child process from now on, while the training code
    # imports (seconds on a fresh project): see registry/store.py.
    with (
        Preparation(settings) as store,
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as progress,
    ):
        task = progress.add_task("Starting", total=None)
        from ..jobs.train import train as run_training

        result = run_training(
            settings, on_step=lambda step: progress.update(task, description=step), store=store
        )
    from ..modeling.baseline import PREFIX

    for name, value in sorted(result.metrics.items()):
        if not name.startswith(PREFIX):
            console.print(f"  {name:<28} {value:.4f}")
    console.print(_against_baseline(result.metrics, "test_"))
    console.print(
        f"run {result.run_id}: registered '{settings.registered_model_name}' version "
        f"{result.model_version}; serving export in {result.export_dir}; "
        f"model card in {settings.reports_dir / 'model_card.md'}"
    )
    return result


def promote() -> None:
    """Promote the newest registered version to champion if it passes the gate (else exit 1)."""
    settings = load_settings()
    with _notified(settings, "promote"):
        _gate(settings, "promote")


def _gate(settings, command: str, run_id: str | None = None) -> None:
    """Judge the newest version, print the figures and the decision; notify and exit 1 when
    refused."""
    from ..modeling.baseline import PREFIX
    from ..registry.promote import promote as run_gate

    decision = run_gate(settings)
    for name, value in sorted(decision.challenger_metrics.items()):
        champion = decision.champion_metrics.get(name)
        versus = f"   champion {champion:.4f}" if champion is not None else ""
        if not name.startswith(PREFIX):
            console.print(f"  {name:<20} challenger {value:.4f}{versus}")
    console.print(_against_baseline(decision.challenger_metrics))
    console.print(decision.summary)
    if not decision.promoted:
        note = f" ({decision.note})" if decision.note else ""
        refused = f"kept the champion: the gate refused version {decision.challenger}{note}: "
        run_id = run_id or _run_of(settings, decision.challenger)
        _notify(settings, command, refused + "; ".join(decision.reasons), run_id)
        raise typer.Exit(1)


def _against_baseline(figures: dict[str, float], holdout: str = "") -> str:
    """One line: the baseline's primary holdout figure and the model's skill over it."""
    from ..modeling.baseline import PREFIX, skill
    from ..modeling.evaluate import PRIMARY_METRIC as metric

    value, base = figures[f"{holdout}{metric}"], figures[f"{PREFIX}{holdout}{metric}"]
    return (
        f"baseline (features ignored): {metric} {base:.4f} on the holdout; the model's "
        f"{value:.4f} is a skill of {skill(metric, value, base):.3f} over it"
    )


@contextmanager
def _notified(settings, command: str) -> Iterator[None]:
    """Notify when the command fails; its error and exit status stay as they were."""
    started = time.time()
    try:
        yield
    except (typer.Exit, KeyboardInterrupt):  # a refusal is notified where it is decided
        raise
    except Exception as error:
        from ..errors import ProjectError
        from ..jobs.notify import run_started_since

        said = str(error) if isinstance(error, ProjectError) else repr(error)
        _notify(settings, command, f"failed: {said}", run_started_since(started))
        raise


def _notify(settings, command: str, what: str, run_id: str | None) -> None:
    """Post the notification; a delivery that fails is one warning line."""
    from rich.markup import escape

    from ..jobs.notify import notify

    if problem := notify(settings, command, what, run_id):
        console.print(f"[yellow]warning:[/] {escape(problem)}")


def _run_of(settings, version: str) -> str | None:
    """The training run of a registered version, for the notification (None if unknown)."""
    from mlflow import MlflowClient

    try:
        return MlflowClient().get_model_version(settings.registered_model_name, version).run_id
    except Exception:  # the registry away: the refusal is notified without it
        return None


def rollback(
    to: Annotated[
        str | None,
        typer.Option("--to", help="The version to make champion (default: the one before)"),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, kept in the champion's history")] = "",
) -> None:
    """Move the champion alias back to the champion before it (or to --to VERSION)."""
    from ..registry.champions import rollback as move_back

    settings = load_settings()
    move = move_back(settings, to, reason)
    console.print(
        f"champion of '{settings.registered_model_name}': version {move.previous} -> "
        f"{move.version} ({move.reason})"
    )


def history() -> None:
    """The moves of the champion alias, oldest first: promotions and rollbacks."""
    from rich.table import Table

    from ..registry.champions import champion_history

    settings = load_settings()
    moves = champion_history(settings)
    if not moves:
        console.print(f"no move of the champion of '{settings.registered_model_name}' is recorded")
        return
    table = Table("#", "at (UTC)", "action", "version", "replaced", "reason", box=None)
    for move in moves:
        table.add_row(
            str(move.number), move.at, move.action, move.version, move.previous or "-", move.reason
        )
    console.print(table)


def reproduce(run_id: Annotated[str, typer.Argument(help="The MLflow run to reproduce")]) -> None:
    """Re-run a training run from its receipt and report whether its metrics match (else exit 1)."""
    from ..jobs.reproduce import reproduce as rerun

    result = rerun(run_id, load_settings())
    for name, recorded, again, equal in result.rows:
        mark = "=" if equal else "!"
        console.print(f"  {mark} {name:<28} recorded {recorded:.6f}   reproduced {again:.6f}")
    console.print(f"run {run_id} {'reproduced' if result.matches else 'did NOT reproduce'}")
    if not result.matches:
        raise typer.Exit(1)


def evaluate(
    path: Annotated[
        Path | None, typer.Argument(help="Labelled file (default: the holdout)")
    ] = None,
    model_uri: Annotated[str | None, typer.Option(help="Export folder or models:/ URI")] = None,
) -> None:
    """Score a saved model on labelled data and write metrics and plots to the reports folder."""
    from ..jobs.evaluate import evaluate_saved_model

    settings = load_settings()
    metrics = evaluate_saved_model(settings, path, model_uri)
    for name, value in metrics.items():
        console.print(f"  {name:<20} {value:.4f}")
    console.print(f"report written to {settings.reports_dir}")


def pull(
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    destination: Annotated[Path, typer.Argument(help="Folder to write the serving export to")],
) -> None:
    """Download the serving export of a registered model version."""
    from ..registry.tracking import pull as download

    settings = load_settings()
    folder = download(model_uri, settings, destination)
    console.print(f"pulled {model_uri} into {folder}")
