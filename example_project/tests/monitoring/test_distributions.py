"""Drift statistics: PSI of a shift, and the verdict on every feature."""

import numpy as np
import pandas as pd

from customer_churn.monitoring.distributions import compare, psi
from customer_churn.monitoring.simulate import drifted
from customer_churn.registry.artifact import REFERENCE_FILE
from customer_churn.sampling import sample_rows


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert psi(reference, rng.normal(size=2000)) < 0.02
    assert psi(reference, rng.normal(loc=1.0, size=2000)) > 0.5


def test_compare_flags_drifted_features_and_not_clean_ones(trained, settings):
    reference = pd.read_parquet(trained.export_dir / REFERENCE_FILE)
    clean = compare(reference, sample_rows(1000, seed=5), settings)
    assert not [name for name, verdict in clean.items() if verdict.drifted]
    shifted = compare(reference, drifted(sample_rows(1000, seed=5), 1.0), settings)
    assert all(verdict.drifted for verdict in shifted.values())
