"""Rows drawn from the feature contract alone: valid values, a few gaps where a feature is
nullable, and a target a model can learn, for any contract the vocabulary can express.

The project's tests and the traffic simulator take their rows from here, so they keep working
when the contract changes; `synthetic.py` writes the realistic example data of the example
contract. The same seed always yields the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from .contract import CONTRACT
from .fields import Categorical, Contract, Numeric

MISSING_SHARE = 0.02
# A number bounded on one side at most lies within twice this (or its bound's size) of it.
DEFAULT_SPREAD = 10.0
# Noise on the target's score, relative to the score's spread: enough that no model is
# perfect, little enough that any sensible one beats guessing the majority class.
NOISE = 0.3
# Rows the target's scale and class boundaries are measured on, once per contract.
REFERENCE_ROWS = 4000


def sample_rows(
    n_rows: int,
    seed: int = 0,
    *,
    contract: Contract = CONTRACT,
    labelled: bool = True,
    missing_share: float = MISSING_SHARE,
) -> pd.DataFrame:
    """`n_rows` rows that follow `contract`, with the target column when `labelled`.

    Numbers are centred in their range, categories equally likely; each value of a nullable
    feature is missing with probability `missing_share`. The target follows a fixed random
    linear score of the features plus noise, the same for every seed: rows drawn with one
    seed teach a model what rows drawn with another test. Classes split the score into
    quantiles, so each of k classes holds about 1/k of the rows.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    if not 0 <= missing_share < 1:
        raise ValueError(f"missing_share must be in [0, 1), got {missing_share}")
    rng = np.random.default_rng(seed)
    values, signals = _draw_features(contract, n_rows, rng)
    columns = {}
    if contract.identifier:
        columns[contract.identifier] = [f"ID{i:07d}" for i in range(1, n_rows + 1)]
    for feature in contract.features:
        gaps = rng.random(n_rows) < missing_share if feature.nullable else np.zeros(n_rows, bool)
        columns[feature.name] = _column(feature, values[feature.name], gaps)
    if labelled:
        columns[contract.target.name] = _target(contract, signals, rng, n_rows)
    return pd.DataFrame(columns)


def _location(minimum: float | None, maximum: float | None) -> tuple[float, float]:
    """Centre and scale of the numbers drawn for a range: three scales fit each side."""
    if minimum is not None and maximum is not None:
        return (minimum + maximum) / 2, (maximum - minimum) / 6
    if minimum is not None:
        spread = max(abs(minimum), DEFAULT_SPREAD)
        return minimum + spread, spread / 3
    if maximum is not None:
        spread = max(abs(maximum), DEFAULT_SPREAD)
        return maximum - spread, spread / 3
    return 0.0, DEFAULT_SPREAD / 3


def _place(latent: np.ndarray, minimum: float | None, maximum: float | None) -> np.ndarray:
    """Standard normal draws moved into [minimum, maximum], rounded to 4 decimals; the rare
    draw beyond three scales lands on the bound."""
    centre, scale = _location(minimum, maximum)
    low = -math.inf if minimum is None else minimum
    high = math.inf if maximum is None else maximum
    return np.clip(np.round(centre + scale * latent, 4), low, high)


def _numbers(feature: Numeric, rng: np.random.Generator, n_rows: int) -> np.ndarray:
    values = _place(rng.standard_normal(n_rows), feature.minimum, feature.maximum)
    if not feature.integer:
        return values
    low = -math.inf if feature.minimum is None else math.ceil(feature.minimum)
    high = math.inf if feature.maximum is None else math.floor(feature.maximum)
    if low > high:
        raise ValueError(f"'{feature.name}': no whole number in its range")
    return np.clip(np.round(values), low, high)


def _draw_features(
    contract: Contract, n_rows: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Every feature's values without gaps, and what each adds to the score: a number its
    distance from the centre in scales, a category its index."""
    values, signals = {}, []
    for feature in contract.features:
        if isinstance(feature, Categorical):
            index = rng.integers(len(feature.categories), size=n_rows)
            values[feature.name] = np.array(feature.categories, dtype=object)[index]
            signals.append(index)
            continue
        numbers = _numbers(feature, rng, n_rows)
        centre, scale = _location(feature.minimum, feature.maximum)
        values[feature.name] = numbers
        signals.append((numbers - centre) / scale if scale > 0 else np.zeros(n_rows))
    return values, signals


def _column(feature: Numeric | Categorical, values: np.ndarray, gaps: np.ndarray):
    if isinstance(feature, Categorical):
        column = values.copy()
        column[gaps] = None
        return column
    if feature.integer:
        column = pd.array(values.astype("int64"), dtype="Int64")
        column[gaps] = pd.NA
        return column if feature.nullable else column.astype("int64")
    column = values.astype(float)
    column[gaps] = np.nan
    return column


@dataclass(frozen=True)
class _Rule:
    """The fixed link from features to target: weights, category effects, the score's centre
    and scale, and the boundaries between classes on the standardised noisy score."""

    weights: np.ndarray
    effects: dict[str, np.ndarray]
    centre: float
    scale: float
    boundaries: np.ndarray | None  # None for regression


def _score(contract: Contract, signals: list[np.ndarray], rule: _Rule, n_rows: int) -> np.ndarray:
    score = np.zeros(n_rows)
    for feature, weight, signal in zip(contract.features, rule.weights, signals, strict=True):
        if isinstance(feature, Categorical):
            signal = rule.effects[feature.name][signal]
        score = score + weight * signal
    return score


def _standard_effects(rng: np.random.Generator, count: int) -> np.ndarray:
    """Effects of `count` categories: mean 0 and spread 1 over equally likely categories."""
    effects = rng.standard_normal(count)
    effects -= effects.mean()
    spread = effects.std()
    return effects / spread if spread > 0 else effects


@lru_cache(maxsize=64)
def _rule(contract: Contract) -> _Rule:
    """The rule of `contract`, seeded by its fingerprint: every sample of it shares it."""
    rng = np.random.default_rng(int(contract.fingerprint(), 16))
    count = len(contract.features)
    weights = rng.choice([-1.0, 1.0], count) * rng.uniform(0.5, 1.5, count)
    effects = {
        f.name: _standard_effects(rng, len(f.categories))
        for f in contract.features
        if isinstance(f, Categorical)
    }
    rule = _Rule(weights, effects, 0.0, 1.0, None)
    _, signals = _draw_features(contract, REFERENCE_ROWS, rng)
    score = _score(contract, signals, rule, REFERENCE_ROWS)
    centre, scale = float(score.mean()), float(score.std()) or 1.0
    noisy = (score - centre) / scale + NOISE * rng.standard_normal(REFERENCE_ROWS)
    classes = len(contract.target.classes)
    boundaries = np.quantile(noisy, np.arange(1, classes) / classes) if classes else None
    return _Rule(weights, effects, centre, scale, boundaries)


def _target(contract: Contract, signals: list[np.ndarray], rng: np.random.Generator, n_rows: int):
    rule = _rule(contract)
    score = _score(contract, signals, rule, n_rows)
    noisy = (score - rule.centre) / rule.scale + NOISE * rng.standard_normal(n_rows)
    target = contract.target
    if target.kind == "regression":
        return _place(noisy / math.sqrt(1 + NOISE**2), target.minimum, target.maximum)
    index = np.searchsorted(rule.boundaries, noisy)
    if target.text_labels:
        return np.array(target.classes, dtype=object)[index]
    return np.array(target.classes, dtype="int64")[index]
