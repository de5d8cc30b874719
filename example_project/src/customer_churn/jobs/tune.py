"""The tuning job: search model.py's `search_space` with Optuna, then hand the best to `train`.

Each trial cross-validates on the training split (the holdout stays unseen, for the model that
`train` then fits) with the folds `train` uses, reports the running mean of the primary metric
after each fold so that an unpromising trial is pruned early, and is an MLflow child run of
one parent run per `tune`. The first trial of a new study is model.py's PARAMS. The sampler
is seeded: the same data, seed and trials give the same best trial. With `storage` (an Optuna
RDB URL, e.g. a PostgreSQL database), several `tune` processes share one study: `trials` is
then the study's total, and each worker stops once it is reached.

The best parameters go to `settings.tuned_params_path` (written whole, or not at all), which
`train` reads over model.py's PARAMS and records in its receipt.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..contract import CONTRACT
from ..data.files import write_text
from ..errors import ProjectError
from ..features import build_pipeline, features_of
from ..model import PARAMS, build_estimator, search_space
from ..modeling.evaluate import CV_SCORING, LOWER_IS_BETTER, PRIMARY_METRIC, as_shown
from ..modeling.fit import labelled_split, resources_used, training_threads
from ..registry.receipt import file_sha256
from ..registry.store import configure_tracking, sample_system_metrics
from ..settings import Settings

SYSTEM_METRICS_INTERVAL = 5.0  # seconds between MLflow's samples of CPU and memory


@dataclass
class Progress:
    """What the command line shows after each trial."""

    number: int  # the trial's number in the study (from 0)
    state: str  # "complete", "pruned" or "failed"
    value: float | None  # the trial's mean cross-validated primary metric, when complete
    best_value: float | None
    best_number: int | None
    done: int  # trials this worker has finished
    elapsed: float  # seconds since this worker started


@dataclass
class TuneResult:
    run_id: str
    study: str
    best: dict[str, Any]  # what was written to tuned_params_path
    trials: int  # trials in the study, every worker's
    pruned: int


def read_tuned(settings: Settings) -> dict[str, Any] | None:
    """What `tune` wrote to `tuned_params_path`, or None when there is no such file; a file
    that cannot be used is a one-line error naming it."""
    path = settings.tuned_params_path
    if not path.is_file():
        return None
    try:
        tuned = json.loads(path.read_text())
        known = build_estimator(settings.seed).get_params()
        unknown = sorted(set(tuned["params"]) - set(known))
        problem = f"no parameters {unknown} in model.py's estimator" if unknown else None
    except (OSError, ValueError, KeyError, TypeError) as error:
        problem = f"{type(error).__name__}: {error}"
    if problem:
        raise ProjectError(
            f"{path} cannot be used ({problem}): run `tune` again, or delete the file to "
            "train with model.py's PARAMS"
        )
    return tuned


def estimator_for(settings: Settings) -> tuple[Any, dict[str, Any] | None]:
    """The estimator `train` fits: model.py's, with the tuned parameters over PARAMS when
    `tune` has written them; and what the receipt records of the tuning (None without)."""
    tuned = read_tuned(settings)
    if tuned is None:
        return build_estimator(settings.seed), None
    summary = {key: value for key, value in tuned.items() if key != "params"}
    return build_estimator(settings.seed, **tuned["params"]), summary


def tune(
    settings: Settings,
    trials: int,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    on_trial: Callable[[Progress], None] = lambda _: None,
) -> TuneResult:
    """Run the search; write and return the best parameters found."""
    import mlflow
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    train_frame, _ = labelled_split(settings)
    name = study_name or settings.registered_model_name
    study = open_study(name, storage, settings.seed)
    configure_tracking(settings)
    usage: dict[str, float] = {}  # the whole search's; MLflow samples the machine as it runs
    sample_system_metrics(SYSTEM_METRICS_INTERVAL)
    with mlflow.start_run(run_name=f"tune {name}", log_system_metrics=True) as parent:
        mlflow.set_tags({"job": "tune", "study": name, "sampler_seed": str(settings.seed)})
        counted = (TrialState.COMPLETE, TrialState.PRUNED)
        done = len(study.get_trials(deepcopy=False, states=counted))  # by any worker
        with training_threads(len(train_frame)), resources_used(usage):
            study.optimize(
                objective(settings, train_frame),
                n_trials=max(0, trials - done),  # none when the study is complete: its best
                timeout=timeout,
                callbacks=[MaxTrialsCallback(trials, states=counted), reporter(on_trial)],
                catch=(ValueError,),  # a combination the estimator refuses fails that trial
            )
        everything = study.get_trials(deepcopy=False)
        if not any(trial.state == TrialState.COMPLETE for trial in everything):
            raise ProjectError(
                f"no trial of study '{name}' finished ({len(everything)} pruned or failed): "
                "check model.py's search_space, or allow more trials or time"
            )
        best = study.best_trial
        tuned = {
            "params": best.params,
            "metric": f"cv_{PRIMARY_METRIC}",
            "value": best.value,
            "study": name,
            "trial": best.number,
            "trials": len(everything),
            "trial_run_id": best.user_attrs.get("run_id"),
            "tune_run_id": parent.info.run_id,
            "data_sha256": file_sha256(settings.data_path),
            "seed": settings.seed,
            "tuned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        mlflow.log_params({f"best_{key}": value for key, value in best.params.items()})
        mlflow.log_metrics({f"best_cv_{PRIMARY_METRIC}": best.value} | usage)
        mlflow.log_dict(tuned, "tuned_params.json")
    write_text(settings.tuned_params_path, json.dumps(tuned, indent=2) + "\n")
    pruned = sum(trial.state == TrialState.PRUNED for trial in everything)
    return TuneResult(parent.info.run_id, name, tuned, len(everything), pruned)


def open_study(name: str, storage: str | None, seed: int):
    """The study `name` in `storage` (in memory when None), created when new: a seeded TPE
    sampler, a median pruner that waits for 5 trials and a trial's first 2 folds, and
    model.py's PARAMS as its first trial."""
    import optuna

    direction = "minimize" if PRIMARY_METRIC in LOWER_IS_BETTER else "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for attempt in range(3):
        try:
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                sampler=optuna.samplers.TPESampler(seed=seed),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
                direction=direction,
                load_if_exists=True,
            )
            break
        except Exception as error:  # an unreachable or malformed storage URL, or a race
            # Workers started together on a new storage race to create its tables: the
            # loser's next attempt finds them made.
            if attempt == 2 or storage is None:
                reason = str(error).strip().splitlines()[0]
                raise ProjectError(f"cannot open study '{name}' in {storage}: {reason}") from None
            time.sleep(1 + attempt)
    if study.direction.name.lower() != direction:
        raise ProjectError(f"study '{name}' in {storage} does not {direction} {PRIMARY_METRIC}")
    if not study.get_trials(deepcopy=False):
        # The first trial is model.py's PARAMS: the best found is never behind them (on the
        # folds), which 30 trials of a random forest's space were on the bundled data.
        study.enqueue_trial(dict(PARAMS), skip_if_exists=True)
    return study


def objective(settings: Settings, train_frame):
    """A trial: model.py's estimator with the trial's parameters, cross-validated fold by fold
    (the running mean reported after each, for the pruner), as an MLflow child run."""
    import mlflow
    import optuna
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import check_cv

    x, y = features_of(train_frame), train_frame[CONTRACT.target.name]
    classifier = CONTRACT.target.kind == "classification"  # stratified folds, as train's
    folds = list(check_cv(settings.cv_folds, y, classifier=classifier).split(x, y))
    scorer = get_scorer(CV_SCORING[PRIMARY_METRIC])

    def run(trial) -> float:
        params = search_space(trial)
        with mlflow.start_run(run_name=f"trial {trial.number}", nested=True) as child:
            trial.set_user_attr("run_id", child.info.run_id)
            mlflow.log_params(params)
            scores: list[float] = []
            for step, (fit_rows, score_rows) in enumerate(folds):
                pipeline = build_pipeline(build_estimator(settings.seed, **params))
                pipeline.fit(x.iloc[fit_rows], y.iloc[fit_rows])
                score = scorer(pipeline, x.iloc[score_rows], y.iloc[score_rows])
                scores.append(float(as_shown(PRIMARY_METRIC, score)))
                trial.report(statistics.fmean(scores), step)
                if trial.should_prune():
                    mlflow.set_tag("trial_state", "pruned")
                    raise optuna.TrialPruned(f"pruned after {step + 1} folds")
            value = statistics.fmean(scores)
            mlflow.log_metric(f"cv_{PRIMARY_METRIC}", value)
            mlflow.set_tag("trial_state", "complete")
            return value

    return run


def reporter(on_trial: Callable[[Progress], None]):
    """The study's callback after each trial: `on_trial` gets the trial and the best so far."""
    from optuna.trial import TrialState

    started, done = time.monotonic(), 0

    def report(study, trial) -> None:
        nonlocal done
        done += 1
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        best = study.best_trial if trials else None
        on_trial(
            Progress(
                trial.number,
                trial.state.name.lower().replace("fail", "failed"),
                trial.value,
                best.value if best else None,
                best.number if best else None,
                done,
                time.monotonic() - started,
            )
        )

    return report
