"""Fitting: validate and split the data, cross-validate, fit on the training split, score the
holdout, and the baseline beside it (baseline.py). Preprocessing is fitted inside the
pipeline, on the training split only."""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.model_selection import cross_validate
from threadpoolctl import threadpool_limits

from ..contract import CONTRACT
from ..data.ingest import load_table, split
from ..data.validate import validate
from ..errors import DataError
from ..features import build_pipeline, features_of
from ..settings import Settings
from . import baseline, evaluate
from .segments import SegmentReport, report_for


@dataclass
class Fitted:
    pipeline: Any
    train_frame: pd.DataFrame
    test_frame: pd.DataFrame
    metrics: dict[str, float]
    segments: SegmentReport


def labelled(frame: pd.DataFrame, on_step: Callable[[str], None] = lambda _: None) -> pd.DataFrame:
    """The rows that have a target, the others skipped and counted; integer labels as int64."""
    name = CONTRACT.target.name
    known = frame[name].notna()
    if not known.all():
        on_step(f"Skipping {int((~known).sum())} rows without a value of '{name}'")
    frame = frame[known].reset_index(drop=True)
    if CONTRACT.target.kind == "classification" and not CONTRACT.target.text_labels:
        frame[name] = frame[name].astype("int64")
    return frame


def labelled_split(
    settings: Settings, on_step: Callable[[str], None] = lambda _: None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validated, labelled rows of `data_path`, split into training rows and the holdout
    (the same split for every job that rebuilds it: same seed and size)."""
    frame = labelled(validate(load_table(settings.data_path)), on_step)
    check_classes(frame, settings)
    return split(frame, settings.test_size, settings.seed)


def check_classes(frame: pd.DataFrame, settings: Settings) -> None:
    """Refuse, in one line, labels training cannot learn: a declared class with too few rows
    for the stratified split and folds, or a single class."""
    if CONTRACT.target.kind != "classification":
        return
    name = CONTRACT.target.name
    counts = frame[name].value_counts().reindex(list(CONTRACT.target.classes), fill_value=0)
    needed = math.ceil(settings.cv_folds / (1 - settings.test_size)) + 1
    for label, count in counts.items():
        if count < needed:
            raise DataError(
                f"class {label!r} of '{name}' has {count} labelled rows: a holdout of "
                f"{settings.test_size:g} and {settings.cv_folds} folds need at least {needed} "
                "(add rows, merge the class into another, or remove it from the contract)"
            )


SMALL_DATA_ROWS = 50_000


def training_threads(rows: int):
    """One OpenMP thread for the compiled parts of training (gradient boosting) below
    `SMALL_DATA_ROWS` rows, where threads cost more in waiting for each other than they win:
    measured on a 2-core machine, fitting 2,000 rows took 0.11 s on one thread against 0.43 s
    on two, and 344 rows of three classes 0.45 s against 11-29 s while another process ran."""
    return threadpool_limits(1, user_api="openmp") if rows < SMALL_DATA_ROWS else nullcontext()


@contextmanager
def resources_used(into: dict[str, float]) -> Iterator[None]:
    """Fill `into` with the block's wall and CPU seconds, its CPU use as a share of the
    machine's cores, and the process's peak memory so far, beside MLflow's system metrics
    (`system/process_...`). Training fits before its MLflow run starts, where MLflow's own
    sampler, which runs with a run, would see none of it; `getrusage` counts every thread."""
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    yield
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - started
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    peak_kb = after.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS
    into |= {
        "system/process_wall_seconds": wall,
        "system/process_cpu_seconds": cpu,
        "system/process_cpu_percentage": 100 * cpu / wall / (os.cpu_count() or 1),
        "system/process_peak_memory_megabytes": peak_kb / 1024,
    }


def fit_and_evaluate(
    settings: Settings, estimator, on_step: Callable[[str], None] = lambda _: None
) -> Fitted:
    """Validate and split the data, cross-validate, fit on the training split, score the holdout."""
    on_step(f"Loading and validating {settings.data_path}")
    train_frame, test_frame = labelled_split(settings, on_step)
    with training_threads(len(train_frame) + len(test_frame)):
        return _fit(settings, build_pipeline(estimator), train_frame, test_frame, on_step)


def _fit(settings: Settings, pipeline, train_frame, test_frame, on_step) -> Fitted:
    x_train, y_train = features_of(train_frame), train_frame[CONTRACT.target.name]
    on_step(f"Cross-validating on {len(train_frame)} rows ({settings.cv_folds} folds)")
    scores = cross_validate(
        pipeline, x_train, y_train, cv=settings.cv_folds, scoring=evaluate.CV_SCORING
    )
    metrics = evaluate.cv_summary(scores)

    on_step("Fitting on the training split")
    pipeline.fit(x_train, y_train)

    on_step(f"Evaluating on the {len(test_frame)}-row holdout")
    segments = report_for(pipeline, test_frame, settings.segment_min_rows)
    holdout = evaluate.compute_metrics(pipeline, test_frame) | segments.metrics()
    metrics |= {f"test_{name}": value for name, value in holdout.items()}

    on_step("Scoring the baseline (features ignored) on the same folds and holdout")
    metrics |= baseline.training_figures(train_frame, test_frame, settings.cv_folds)
    primary = evaluate.PRIMARY_METRIC
    metrics[baseline.SKILL] = baseline.skill(
        primary, metrics[f"test_{primary}"], metrics[f"{baseline.PREFIX}test_{primary}"]
    )
    return Fitted(pipeline, train_frame, test_frame, metrics, segments)
