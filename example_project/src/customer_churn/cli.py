"""The command line: `python -m <package> data|train|evaluate|predict|serve|monitor|simulate`."""

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .errors import ProjectError
from .settings import ENV_PREFIX, Settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        console.print(f"[red]error:[/] invalid setting: {problems}")
        raise typer.Exit(2) from None


@app.command()
def data(
    rows: Annotated[int, typer.Option(min=1, help="Number of rows to generate")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same rows")] = 42,
    output: Annotated[
        Path | None, typer.Option(help="CSV or Parquet file (default: data_path)")
    ] = None,
) -> None:
    """Generate a synthetic dataset that follows the feature contract."""
    from .ingest import write_table
    from .synthetic import generate

    target = output or _settings().data_path
    write_table(generate(rows, seed), target)
    console.print(f"wrote {rows} rows to {target}")


@app.command()
def validate(
    path: Annotated[
        Path | None, typer.Argument(help="CSV or Parquet file (default: data_path)")
    ] = None,
    labelled: Annotated[bool, typer.Option(help="Require the target column")] = True,
) -> None:
    """Check a data file against the feature contract."""
    from .ingest import load_table
    from .validate import validate as check

    path = path or _settings().data_path
    frame = check(load_table(path), require_target=labelled)
    console.print(f"{path}: {len(frame)} rows follow the feature contract")


@app.command()
def train() -> None:
    """Train, evaluate, log to MLflow, register a version and export it for serving."""
    from .train import train as run_training

    settings = _settings()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("Starting", total=None)
        result = run_training(
            settings, on_step=lambda step: progress.update(task, description=step)
        )
    for name, value in sorted(result.metrics.items()):
        console.print(f"  {name:<28} {value:.4f}")
    console.print(
        f"run {result.run_id}: registered '{settings.registered_model_name}' version "
        f"{result.model_version}; serving export in {result.export_dir}; "
        f"model card in {settings.reports_dir / 'model_card.md'}"
    )


@app.command()
def promote() -> None:
    """Promote the newest registered version to champion if it passes the gate (else exit 1)."""
    from .promote import promote as run_gate

    settings = _settings()
    decision = run_gate(settings)
    for name, value in sorted(decision.challenger_metrics.items()):
        champion = decision.champion_metrics.get(name)
        versus = f"   champion {champion:.4f}" if champion is not None else ""
        console.print(f"  {name:<20} challenger {value:.4f}{versus}")
    console.print(decision.summary)
    if not decision.promoted:
        raise typer.Exit(1)


@app.command()
def reproduce(run_id: Annotated[str, typer.Argument(help="The MLflow run to reproduce")]) -> None:
    """Re-run a training run from its receipt and report whether its metrics match (else exit 1)."""
    from .train import reproduce as rerun

    result = rerun(run_id, _settings())
    for name, recorded, again, equal in result.rows:
        mark = "=" if equal else "!"
        console.print(f"  {mark} {name:<28} recorded {recorded:.6f}   reproduced {again:.6f}")
    console.print(f"run {run_id} {'reproduced' if result.matches else 'did NOT reproduce'}")
    if not result.matches:
        raise typer.Exit(1)


@app.command()
def evaluate(
    path: Annotated[
        Path | None, typer.Argument(help="Labelled file (default: the holdout)")
    ] = None,
    model_uri: Annotated[str | None, typer.Option(help="Export folder or models:/ URI")] = None,
) -> None:
    """Score a saved model on labelled data and write metrics and plots to the reports folder."""
    from .evaluate import evaluate_saved_model

    settings = _settings()
    metrics = evaluate_saved_model(settings, path, model_uri)
    for name, value in metrics.items():
        console.print(f"  {name:<20} {value:.4f}")
    console.print(f"report written to {settings.reports_dir}")


@app.command()
def predict(
    input_path: Annotated[Path, typer.Argument(help="CSV or Parquet file of records")],
    output_path: Annotated[Path, typer.Argument(help="CSV or Parquet file to write")],
    model_uri: Annotated[str | None, typer.Option(help="Export folder or models:/ URI")] = None,
) -> None:
    """Predict every row of a file; the output is written only once all rows are scored."""
    from .predict import predict_file
    from .register import load_model

    settings = _settings()
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


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: settings.host)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port)")] = None,
    model_uri: Annotated[str | None, typer.Option(help="Export folder or models:/ URI")] = None,
) -> None:
    """Serve predictions over HTTP with uvicorn (one worker; scale with replicas)."""
    import uvicorn

    from .observability import configure_logging
    from .serve import create_app, load

    settings = _settings()
    if model_uri:
        settings = settings.model_copy(update={"model_uri": model_uri})
    configure_logging(settings.log_format)
    model = load(settings.model_source, settings)  # fail here, clearly, before binding a port
    uvicorn.run(
        create_app(settings, model),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,  # the service writes its own access log, with request ids
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )


@app.command()
def monitor(
    window: Annotated[
        int | None, typer.Option(min=1, help="Last N logged records (default: drift_window)")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="CSV or Parquet of request_id, [row,] target: adds live metrics"),
    ] = None,
    model_uri: Annotated[
        str | None, typer.Option(help="Export folder or models:/ URI of the reference")
    ] = None,
    log_dir: Annotated[
        Path | None, typer.Option(help="Prediction log folder (default: prediction_log_dir)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Folder for drift.json/html (default: monitoring_dir)")
    ] = None,
) -> None:
    """Compare logged traffic with the training reference; exit 1 when a threshold is breached."""
    from .monitor import run, summary_lines

    settings = _settings()
    result = run(
        settings,
        model_uri=model_uri,
        log_dir=log_dir,
        window=window,
        labels=labels,
        output_dir=output,
    )
    for line in summary_lines(result):
        console.print(line)
    report = (output or settings.monitoring_dir) / "drift.html"
    console.print(f"report: {report}")
    if result["breaches"]:
        raise typer.Exit(1)


@app.command()
def simulate(
    url: Annotated[str, typer.Option(help="Base URL of the running service")] = (
        "http://127.0.0.1:8000"
    ),
    requests: Annotated[int, typer.Option(min=1, help="Requests to send")] = 500,
    batch: Annotated[int, typer.Option(min=1, help="Records per request")] = 1,
    drift: Annotated[
        float, typer.Option(min=0, max=1, help="0: training distribution; 1: strongly drifted")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the generated records")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight")] = 4,
    rate: Annotated[
        float | None, typer.Option(min=0.1, help="At most this many requests per second")
    ] = None,
    labels_out: Annotated[
        Path | None, typer.Option(help="Write the true labels here, for `monitor --labels`")
    ] = None,
) -> None:
    """Send realistic (optionally drifted) traffic to a running service."""
    from .simulate import send

    settings = _settings()
    key = settings.api_key.get_secret_value() if settings.api_key else None
    traffic = send(
        url,
        requests=requests,
        batch=batch,
        drift=drift,
        seed=seed,
        concurrency=concurrency,
        api_key=key,
        labels_out=labels_out,
        rate=rate,
    )
    console.print(
        f"sent {traffic.sent} requests ({traffic.records} records answered) in "
        f"{traffic.seconds:.1f} s; statuses {traffic.statuses}"
    )
    if traffic.failed:
        console.print(f"[red]error:[/] {traffic.failed} requests failed (status 0: no answer)")
        raise typer.Exit(1)


@app.command()
def pull(
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    destination: Annotated[Path, typer.Argument(help="Folder to write the serving export to")],
) -> None:
    """Download the serving export of a registered model version."""
    from .register import pull as download

    settings = _settings()
    folder = download(model_uri, settings, destination)
    console.print(f"pulled {model_uri} into {folder}")


def main() -> None:
    """Entry point: run a command, print project errors without a traceback."""
    try:
        app()
    except ProjectError as error:
        console.print(f"[red]error:[/] {error}")
        raise SystemExit(2) from None
    except ModuleNotFoundError as error:  # a serving-only install running a training command
        console.print(
            f"[red]error:[/] this command needs '{error.name}', which is part of the training "
            "dependencies: install them with `uv sync --group train`"
        )
        raise SystemExit(2) from None
