"""The command line: the data, training and the registry, the service, monitoring;
`python -m customer_churn COMMAND --help` describes each command."""

import typer

from ..errors import ProjectError
from .data import contract, data, validate
from .monitoring import monitor, retrain_relay, simulate
from .prediction import predict
from .serving import serve, smoke
from .shared import console
from .training import evaluate, history, promote, pull, reproduce, rollback, train
from .tuning import tune

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
app.add_typer(contract, name="contract")
# Registered in the order `--help` lists them.
for command in (
    data,
    validate,
    tune,
    train,
    promote,
    rollback,
    history,
    reproduce,
    evaluate,
    predict,
    serve,
    smoke,
    monitor,
    simulate,
    retrain_relay,
    pull,
):
    app.command()(command)


def main() -> None:
    """Entry point: run a command, print project errors without a traceback."""
    try:
        app()
    except ProjectError as error:
        console.print(f"[red]error:[/] {error}")
        raise SystemExit(2) from None
    except ModuleNotFoundError as error:  # a serving-only install running another command
        console.print(
            f"[red]error:[/] this command needs '{error.name}', which a serving install lacks: "
            "add the exact pipeline and the training with `uv sync --group exact --group train`"
        )
        raise SystemExit(2) from None
