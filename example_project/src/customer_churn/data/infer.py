"""Drafting a feature contract from a table: one field per column, its range or categories
read from the data; refusals name each column that cannot be a feature and what to do."""

import math
import re
import shlex
from dataclasses import dataclass

import pandas as pd
from pydantic import BaseModel

from ..errors import DataError
from ..fields import Categorical, Contract, Feature, Numeric, Target

# Numeric ranges are the observed ones widened on each side by this share of the span.
MARGIN = 0.1
# A text column with more distinct values than this, most of them unique, is free text.
FREE_TEXT_DISTINCT = 50
FREE_TEXT_UNIQUE_SHARE = 0.5
# Non-whole numbers with more distinct values than this are not class labels.
MAX_DECIMAL_CLASSES = 20
DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?.*)?$")
IDENTIFIER_NAME = re.compile(r"(?i:^id$|[_\W]id$)|[a-z]Id$")  # id, customer_id, customerId


@dataclass(frozen=True)
class Draft:
    """A contract read from a table, with what the user should know about it."""

    contract: Contract
    booleans: tuple[str, ...]  # true/false columns, declared as whole numbers 0 and 1
    warnings: tuple[str, ...]
    rows: int
    missing_targets: int


def _snake_case(name: str) -> str:
    snake = re.sub(r"\W+", "_", name).strip("_").lower() or "column"
    return f"x_{snake}" if snake[0].isdigit() else snake


def _is_boolean(values: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(values) or (
        values.dtype == object and len(values) > 0 and values.map(type).eq(bool).all()
    )


def _looks_like_dates(values: pd.Series) -> bool:
    text = values.astype(str).str.strip()
    if not text.str.match(DATE).all():
        return False
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def _refusal(name: str, column: pd.Series) -> str | None:
    """Why the column cannot be a feature, and what to do; None if it can."""
    values, option = column.dropna(), shlex.quote(name)
    if values.empty:
        return f"'{name}' is empty: --drop {option}"
    if values.nunique() == 1:
        return f"'{name}' holds one value ({values.iloc[0]!r}): it tells nothing, --drop {option}"
    if pd.api.types.is_numeric_dtype(values) or _is_boolean(values):
        return _bad_name(name)
    if pd.api.types.is_datetime64_any_dtype(values) or _looks_like_dates(values):
        return (
            f"'{name}' holds dates: derive numbers from it (month, weekday, age in days) in "
            f"a column of their own, and --drop {shlex.quote(name)}"
        )
    text = values.astype(str)
    distinct = text.nunique()
    if distinct > FREE_TEXT_DISTINCT and distinct > FREE_TEXT_UNIQUE_SHARE * len(values):
        words = text.str.contains(r"\s").mean() > FREE_TEXT_UNIQUE_SHARE
        kind = "an identifier" if distinct == len(column) and not words else "free text"
        return (
            f"'{name}' looks like {kind} ({distinct} distinct values in {len(values)} rows): "
            f"--drop {option}" + (f" or --id {option}" if kind == "an identifier" else "")
        )
    return _bad_name(name)


def _bad_name(name: str) -> str | None:
    # The ONNX export renames other inputs, pydantic refuses a leading "_" and warns about
    # names of its own: neither the served model nor the API's request model could take them.
    if name.isidentifier() and not name.startswith("_") and not hasattr(BaseModel, name):
        return None
    return (
        f"'{name}' is not a name the served model and the API can take (letters, digits and "
        f"'_', not first): rename the column, e.g. to '{_snake_case(name)}'"
    )


def _nice(value: float, step: float, up: bool) -> float:
    """`value` rounded outward to a multiple of `step`, without float dust."""
    rounded = (math.ceil if up else math.floor)(value / step) * step
    return round(rounded, max(0, -math.floor(math.log10(step))))


def widened(low: float, high: float, integer: bool) -> tuple[float, float]:
    """The observed range widened by MARGIN of its span on each side, rounded outward to a
    round step; whole numbers stay whole, and a non-negative column stays at 0 or above."""
    margin = (high - low) * MARGIN
    step = 10 ** math.floor(math.log10(margin)) if margin > 0 else 1
    step = max(step, 1) if integer else step
    minimum, maximum = _nice(low - margin, step, up=False), _nice(high + margin, step, up=True)
    if low >= 0:
        minimum = max(minimum, 0)
    if integer or (float(minimum).is_integer() and float(maximum).is_integer()):
        return int(minimum), int(maximum)
    return minimum, maximum


def _is_whole(values: pd.Series) -> bool:
    return bool((values.astype(float) % 1 == 0).all())


def _feature(name: str, column: pd.Series) -> Feature:
    values, nullable = column.dropna(), bool(column.isna().any())
    description = f"TODO: describe {name}"
    if _is_boolean(values):
        return Numeric(name, description, 0, 1, integer=True, nullable=nullable)
    if pd.api.types.is_numeric_dtype(values):
        integer = _is_whole(values)
        minimum, maximum = widened(float(values.min()), float(values.max()), integer)
        return Numeric(name, description, minimum, maximum, integer=integer, nullable=nullable)
    categories = tuple(sorted(values.astype(str).unique()))
    return Categorical(name, description, categories, nullable=nullable)


def _wrong_kind(name: str, kind: str, reason: str) -> DataError:
    other = "regression" if kind == "classification" else "classification"
    return DataError(
        f"target '{name}' {reason}: this project was rendered for {kind}; render it with "
        f"problem_type={other} for such a target"
    )


def _target(name: str, column: pd.Series, kind: str) -> Target:
    """The target: classes sorted from the data, or a numeric range."""
    values, description = column.dropna(), f"TODO: describe {name}"
    if values.empty:
        raise DataError(f"target '{name}' has no values")
    numeric = pd.api.types.is_numeric_dtype(values) or _is_boolean(values)
    if kind == "regression":
        if not numeric or _is_boolean(values):
            raise _wrong_kind(name, kind, "holds text or true/false, not numbers")
        if values.nunique() == 1:
            raise DataError(f"target '{name}' holds one value ({values.iloc[0]!r})")
        low, high = widened(float(values.min()), float(values.max()), _is_whole(values))
        return Target(name, description, "regression", minimum=low, maximum=high)
    if numeric and _is_whole(values):
        classes: tuple = tuple(sorted(int(v) for v in values.unique()))
    elif numeric and values.nunique() > MAX_DECIMAL_CLASSES:
        raise _wrong_kind(name, kind, f"looks continuous ({values.nunique()} distinct numbers)")
    else:
        classes = tuple(sorted(values.astype(str).unique()))
    if len(classes) < 2:
        raise DataError(f"target '{name}' has one class ({classes[0]!r}): a classifier needs two")
    return Target(name, description, "classification", classes)


def _warnings(frame: pd.DataFrame, features: list[Feature], target: str) -> list[str]:
    """Likely identifiers and visible target leakage; the contract is written all the same."""
    notes = []
    for feature in features:
        column, name = frame[feature.name], feature.name
        whole = isinstance(feature, Categorical) or feature.integer
        if IDENTIFIER_NAME.search(name) or (whole and column.notna().all() and column.is_unique):
            notes.append(f"'{name}' looks like an identifier: pass --id {name} or --drop {name}")
        pairs = frame[[name, target]].dropna().astype(str)
        if pairs.empty:
            continue
        identical = (pairs[name] == pairs[target]).all()
        forward = pairs.groupby(name)[target].nunique().max() == 1
        backward = pairs.groupby(target)[name].nunique().max() == 1
        repeats = pairs[name].nunique() < len(pairs)
        if identical or (forward and backward and repeats):
            how = "equals" if identical else "maps one-to-one onto"
            notes.append(f"'{name}' {how} the target '{target}': a leak? --drop {name}")
    return notes


def _check_names(frame: pd.DataFrame, target: str, identifier: str | None, drop) -> None:
    named = [("target", target), *(("--id", n) for n in [identifier] if n)]
    named += [("--drop", n) for n in drop]
    for option, name in named:
        if name not in frame.columns:
            raise DataError(f"{option} '{name}': no such column (columns: {list(frame.columns)})")
    if identifier and frame[identifier].isna().any():
        raise DataError(f"--id '{identifier}' has missing values: an identifier needs one a row")


def draft(
    frame: pd.DataFrame,
    target: str,
    kind: str,
    identifier: str | None = None,
    drop: tuple[str, ...] = (),
) -> Draft:
    """The contract of `frame` for a `kind` project, or DataError listing every column that
    cannot be a feature (one line each)."""
    _check_names(frame, target, identifier, drop)
    names = [c for c in frame.columns if c not in {target, identifier, *drop}]
    refusals = [reason for name in names if (reason := _refusal(str(name), frame[name]))]
    if refusals:
        lines = "\n".join(f"- {reason}" for reason in refusals)
        raise DataError(f"these columns cannot be features:\n{lines}")
    if not names:
        raise DataError("no column is left to be a feature")
    features = [_feature(name, frame[name]) for name in names]
    contract = Contract(tuple(features), _target(target, frame[target], kind), identifier)
    return Draft(
        contract=contract,
        booleans=tuple(name for name in names if _is_boolean(frame[name].dropna())),
        warnings=tuple(_warnings(frame, features, target)),
        rows=len(frame),
        missing_targets=int(frame[target].isna().sum()),
    )
