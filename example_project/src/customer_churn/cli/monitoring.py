"""The monitoring commands: the drift job, test traffic for a running service, and the relay
from drift alerts to the training workflow."""

from pathlib import Path
from typing import Annotated

import typer

from .shared import console, load_settings


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
    from ..monitoring.drift import run, summary_lines

    settings = load_settings()
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
    from ..monitoring.simulate import send

    settings = load_settings()
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


def retrain_relay(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 9095,
) -> None:
    """Start the CI's training workflow when Alertmanager posts drift alerts (its webhook)."""
    import uvicorn

    from ..monitoring.dispatch import target_from
    from ..monitoring.retrain import Relay, create_app
    from ..service.logs import configure_logging

    settings = load_settings()
    target = target_from(settings)  # a missing setting stops here, before binding a port
    relay = Relay(target, settings.monitoring_dir, settings.retrain_cooldown)
    configure_logging(settings.log_format)
    console.print(
        f"relaying alerts posted to http://{host}:{port}/alerts to {target.name} "
        f"({target.repository}, {target.ref})"
    )
    uvicorn.run(create_app(relay), host=host, port=port, log_config=None, access_log=False)
