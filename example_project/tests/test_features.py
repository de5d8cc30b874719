"""Preprocessing from the contract: fitted on training rows only, robust to gaps and novelties."""

import numpy as np
import pytest

from customer_churn.contract import CONTRACT
from customer_churn.data.validate import validate
from customer_churn.features import build_preprocessor, features_of
from customer_churn.model import SCALE_NUMBERS
from customer_churn.sampling import sample_rows


def test_output_columns_follow_the_contract():
    frame = validate(sample_rows(400, seed=1))
    preprocessor = build_preprocessor().fit(features_of(frame))
    names = list(preprocessor.get_feature_names_out())
    expected_width = len(CONTRACT.numeric) + sum(
        len(f.categories) for f in CONTRACT.features if f.name in CONTRACT.categorical
    )
    assert len(names) == expected_width
    assert names[: len(CONTRACT.numeric)] == CONTRACT.numeric


def test_statistics_come_from_the_fitted_rows_only():
    train, other = validate(sample_rows(400, seed=1)), validate(sample_rows(400, seed=2))
    numeric = build_preprocessor().fit(features_of(train)).named_transformers_["numeric"]
    refit = build_preprocessor().fit(features_of(other)).named_transformers_["numeric"]
    numbers = features_of(train)[CONTRACT.numeric]
    np.testing.assert_allclose(numeric[0].statistics_, numbers.median())
    assert not np.allclose(numeric[0].statistics_, refit[0].statistics_)
    if SCALE_NUMBERS:
        np.testing.assert_allclose(numeric[-1].mean_, numbers.fillna(numbers.median()).mean())
        assert not np.allclose(numeric[-1].mean_, refit[-1].mean_)


@pytest.mark.parametrize("scale", [True, False])
def test_numbers_are_standardised_only_when_asked(scale):
    frame = validate(sample_rows(400, seed=1))
    encoded = build_preprocessor(scale=scale).fit_transform(features_of(frame))
    numbers = encoded[:, : len(CONTRACT.numeric)]
    medians = features_of(frame)[CONTRACT.numeric].median()
    if scale:
        np.testing.assert_allclose(numbers.mean(axis=0), 0, atol=1e-9)
    else:
        filled = features_of(frame)[CONTRACT.numeric].fillna(medians)
        np.testing.assert_array_equal(numbers, filled.to_numpy(dtype=float))


def test_missing_values_and_unknown_categories_are_handled():
    frame = validate(sample_rows(200, seed=1))
    preprocessor = build_preprocessor().fit(features_of(frame))
    odd = features_of(frame).head(2).copy()
    odd.loc[:, CONTRACT.numeric] = np.nan
    odd.loc[:, CONTRACT.categorical] = "never-seen"
    encoded = preprocessor.transform(odd)
    assert np.isfinite(encoded).all()
    assert (encoded[:, len(CONTRACT.numeric) :] == 0).all(), "an unknown category encodes to zeros"
