"""The `tune` command: the hyperparameter search, with a line of progress per trial."""

from typing import Annotated

import typer

from ..settings import ENV_PREFIX
from .shared import console, load_settings


def tune(
    trials: Annotated[
        int, typer.Option(min=1, help="Trials to run (with --storage: the study's total)")
    ] = 30,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Stop starting trials after this many seconds")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            envvar=f"{ENV_PREFIX}TUNE_STORAGE",
            show_envvar=True,
            help="Optuna storage URL shared by several workers, e.g. postgresql://HOST/DB "
            "(default: in memory, this process alone)",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: the registered model's name)")
    ] = None,
) -> None:
    """Search model.py's search_space with Optuna; the best parameters are the next `train`'s."""
    from ..jobs.tune import tune as run_tuning
    from ..modeling.evaluate import PRIMARY_METRIC as metric

    settings = load_settings()
    console.print(
        f"Tuning: {trials} trials{f', at most {timeout:g} s' if timeout else ''}, "
        f"cross-validated {metric} on the training split ({settings.cv_folds} folds)"
    )

    def show(progress) -> None:
        at = " at" if progress.state == "pruned" else ""  # its mean over the folds it ran
        figure = "" if progress.value is None else f"{at} {metric} {progress.value:.4f}"
        best = (
            ""
            if progress.best_value is None
            else f"; best {progress.best_value:.4f} (trial {progress.best_number})"
        )
        left = trials - progress.done
        if timeout:
            left_seconds = max(0.0, timeout - progress.elapsed)
        else:
            left_seconds = progress.elapsed / progress.done * left
        console.print(
            f"  trial {progress.number}: {progress.state}{figure}{best}; "
            f"{progress.elapsed:.0f} s, about {left_seconds:.0f} s left"
        )

    result = run_tuning(settings, trials, timeout, storage, study, on_trial=show)
    best = result.best
    console.print(
        f"study '{result.study}': {result.trials} trials ({result.pruned} pruned); best "
        f"{metric} {best['value']:.4f} (trial {best['trial']}), written to "
        f"{settings.tuned_params_path}: the next `train` uses it"
    )
    for name, value in sorted(best["params"].items()):
        console.print(f"  {name:<28} {value}")
