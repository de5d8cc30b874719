"""Drift of a column between two samples: PSI and KS for numbers, Jensen-Shannon and chi-square
for categories.

The PSI (on deciles of the reference) and Jensen-Shannon scores decide; the Kolmogorov-Smirnov
and chi-square p-values are reported alongside (they flag trivial shifts once windows are
large). The predictions are tested like a number.

The tests come from scipy (declared in the `train` group). Evidently, the usual
library for this, does not import with pandas 3, and pinning pandas 2 for the whole project
to get a report is a worse trade than these few well-known formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ..contract import CONTRACT
from ..fields import Categorical
from ..settings import Settings

EPSILON = 1e-4  # floor of a bin's share in PSI: an empty bin would make it infinite
MISSING = "(missing)"


@dataclass
class Drift:
    """The verdict on one column."""

    name: str
    kind: str  # "numeric" or "categorical"
    statistic: str  # "psi" or "jensen_shannon"
    score: float
    threshold: float
    drifted: bool
    test: str  # "ks" or "chi2"
    p_value: float | None


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `current` against `reference`, on reference deciles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
    )
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    expected = np.clip(expected / expected.sum(), EPSILON, None)
    actual = np.clip(actual / actual.sum(), EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_drift(name: str, reference: pd.Series, current: pd.Series, threshold: float) -> Drift:
    """The verdict on a numeric column: PSI decides, the KS p-value alongside."""
    ref = reference.dropna().to_numpy(dtype=float)
    cur = current.dropna().to_numpy(dtype=float)
    if len(ref) == 0 or len(cur) == 0:
        return Drift(name, "numeric", "psi", 0.0, threshold, False, "ks", None)
    score = psi(ref, cur)
    p_value = float(stats.ks_2samp(ref, cur).pvalue)
    return Drift(name, "numeric", "psi", score, threshold, score > threshold, "ks", p_value)


def categorical_drift(
    name: str, reference: pd.Series, current: pd.Series, categories, threshold: float
) -> Drift:
    """The verdict on a categorical column: Jensen-Shannon decides, chi-square alongside."""
    levels = [*categories, MISSING]
    ref = reference.astype(object).fillna(MISSING).value_counts().reindex(levels, fill_value=0)
    cur = current.astype(object).fillna(MISSING).value_counts().reindex(levels, fill_value=0)
    score = float(jensenshannon(ref.to_numpy(float), cur.to_numpy(float), base=2))
    seen = (ref + cur) > 0
    p_value = None
    if seen.sum() > 1:
        p_value = float(stats.chi2_contingency(np.vstack([ref[seen], cur[seen]]))[1])
    return Drift(
        name, "categorical", "jensen_shannon", score, threshold, score > threshold, "chi2", p_value
    )


def compare(reference: pd.DataFrame, current: pd.DataFrame, settings: Settings) -> dict[str, Drift]:
    """The drift verdict of every contract feature, `current` against `reference`."""
    verdicts = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            verdicts[feature.name] = categorical_drift(
                feature.name,
                reference[feature.name],
                current[feature.name],
                feature.categories,
                settings.drift_js_threshold,
            )
        else:
            verdicts[feature.name] = numeric_drift(
                feature.name,
                reference[feature.name],
                current[feature.name],
                settings.drift_psi_threshold,
            )
    return verdicts
