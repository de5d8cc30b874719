"""The tracking store: checking a server answers, pointing MLflow at the store and its
experiment, and getting it ready in a second process while training starts.

Why a second process: on a fresh project the first MLflow call creates the SQLite store
(MLflow's schema migrations, each committed to disk), and the first `import mlflow` compiles
about a thousand modules, while the training process, on one core, compiles and imports its
own libraries. On a 2-core machine a fresh project's first `train --promote` took 33-41 s
with the set-up in line, 22-23 s with `Preparation` running it beside the training code's
imports, the data loading and the fit. The training process touches the store only once the
child has exited, then points itself at it (quick by then).

This module imports neither pandas nor scikit-learn: the child starts in a fraction of a second.
Run alone: `python -m <package>.registry.store TRACKING_URI EXPERIMENT ARTIFACT_FOLDER`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from ..errors import TrackingError
from ..settings import ENV_PREFIX, Settings


def _is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail at once, and clearly, when a tracking server does not answer.

    MLflow's client would otherwise retry for minutes before giving up.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        # http(s) only, checked above
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()  # noqa: S310
    except OSError as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(
            f"cannot reach the tracking server at {uri} ({reason}): start it, or point "
            "MLFLOW_TRACKING_URI at one that runs"
        ) from None


def _point_at(uri: str, experiment_name: str, artifact_location: Path) -> str:
    """Point MLflow at the store and the experiment (created when missing); its id."""
    import mlflow

    try:
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.get_experiment_by_name(experiment_name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            # A local store keeps artifacts in the project folder; a server chooses its own.
            location = artifact_location.resolve().as_uri() if _is_local_store(uri) else None
            experiment_id = mlflow.create_experiment(experiment_name, location)
    except Exception as error:  # MLflow's and the database driver's: many classes, one story
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise TrackingError(
            f"cannot use the tracking store at {uri}: {reason} (check {ENV_PREFIX}TRACKING_URI "
            "or MLFLOW_TRACKING_URI)"
        ) from None
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def sample_system_metrics(interval: float) -> None:
    """Have MLflow sample CPU, memory and disk every `interval` seconds (unless
    MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL says otherwise) in runs started with
    `log_system_metrics=True`, without its start and stop lines."""
    import mlflow

    if not os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"):
        mlflow.set_system_metrics_sampling_interval(interval)
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)


def configure_tracking(settings: Settings) -> str:
    """Point MLflow at the configured server or file and return the experiment id."""
    check_server(settings.tracking_uri)
    return _point_at(settings.tracking_uri, settings.experiment_name, settings.artifact_location)


class Preparation:
    """The store's set-up (`configure_tracking`), in a child process when this one has not
    imported MLflow yet; in this process, at once, when it has (a test session, a notebook),
    since the child would then only add its own start to the wait.

    `check` raises the child's error as soon as it has failed; `finish` waits for the child,
    then configures this process. The child is always waited for, never killed: a store is
    not left half-migrated.
    """

    def __init__(self, settings: Settings) -> None:
        check_server(settings.tracking_uri)  # a server that is away fails here, at once
        self.settings = settings
        self.process: subprocess.Popen | None = None
        if "mlflow" in sys.modules:
            self.experiment_id = _point_at(
                settings.tracking_uri, settings.experiment_name, settings.artifact_location
            )
            return
        command = [
            sys.executable,
            "-m",
            __name__,
            settings.tracking_uri,
            settings.experiment_name,
            str(settings.artifact_location),
        ]
        # The child's one-line error goes to a file (MLflow's log lines to nowhere: they would
        # mix with the progress display), read back by `check` or `finish`.
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by __exit__)
        # This interpreter and module, arguments as a list: no shell.
        self.process = subprocess.Popen(  # noqa: S603
            command, stdout=self.errors, stderr=subprocess.DEVNULL
        )

    def check(self) -> None:
        """Raise the child's error, in this process, if it has failed."""
        if self.process is not None and self.process.poll() not in (None, 0):
            self.finish()

    def finish(self) -> str:
        """Wait for the child, then point this process at the store; the experiment id."""
        if self.process is None:  # set up in this process already
            return self.experiment_id
        if self.process.wait() != 0:
            self.errors.seek(0)
            message = self.errors.read().strip()
            if message:  # the child's own TrackingError; else a crash this process repeats
                raise TrackingError(message)
        return configure_tracking(self.settings)

    def __enter__(self) -> Preparation:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            self.process.wait()
            self.errors.close()


def main(argv: list[str]) -> None:
    """Set the store up; on failure, print the one-line error and exit 2."""
    uri, experiment_name, artifact_location = argv
    try:
        _point_at(uri, experiment_name, Path(artifact_location))
    except TrackingError as error:
        print(error)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(sys.argv[1:])
