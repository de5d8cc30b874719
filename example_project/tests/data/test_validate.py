"""Validation derived from the contract: every problem is reported with its column and rows."""

import pytest

from customer_churn.contract import CONTRACT
from customer_churn.data.validate import validate
from customer_churn.errors import DataError
from customer_churn.fields import Categorical, Numeric

BOUNDED = next(f for f in CONTRACT.features if isinstance(f, Numeric) and f.maximum is not None)
CATEGORICAL = next(f for f in CONTRACT.features if isinstance(f, Categorical))
INTEGER = next((f for f in CONTRACT.features if isinstance(f, Numeric) and f.integer), None)


def test_valid_data_passes_and_is_coerced(sample):
    checked = validate(sample)
    assert len(checked) == len(sample)
    for name in CONTRACT.numeric:
        assert checked[name].dtype == "float64"


def test_out_of_range_value_names_column_and_row(sample):
    sample[BOUNDED.name] = sample[BOUNDED.name].astype(float)
    sample.loc[7, BOUNDED.name] = BOUNDED.maximum + 1
    with pytest.raises(DataError, match=rf"column '{BOUNDED.name}' fails in_range.* at rows 7"):
        validate(sample)


def test_unknown_category_names_column_and_row(sample):
    sample.loc[4, CATEGORICAL.name] = "no-such-category"
    with pytest.raises(DataError, match=rf"column '{CATEGORICAL.name}' fails isin.* at rows 4"):
        validate(sample)


def test_missing_column_is_named(sample):
    with pytest.raises(DataError, match=f"missing column '{CATEGORICAL.name}'"):
        validate(sample.drop(columns=[CATEGORICAL.name]))


def test_every_problem_is_reported_at_once(sample):
    sample = sample.astype({BOUNDED.name: object})
    sample.loc[2, BOUNDED.name] = "twelve"
    sample.loc[[3, 5], CATEGORICAL.name] = "bogus"
    with pytest.raises(DataError) as error:
        validate(sample.drop(columns=[CONTRACT.target.name]))
    message = str(error.value)
    assert f"column '{BOUNDED.name}' fails coerce_dtype('float64') at rows 2" in message
    assert f"column '{CATEGORICAL.name}' fails isin" in message and "rows 3, 5" in message
    assert f"missing column '{CONTRACT.target.name}'" in message


@pytest.mark.skipif(INTEGER is None, reason="the contract has no integer feature")
def test_fractions_are_refused_for_integer_features(sample):
    sample = sample.astype({INTEGER.name: float})
    sample.loc[1, INTEGER.name] = 2.5
    with pytest.raises(DataError, match=rf"column '{INTEGER.name}' fails whole at rows 1"):
        validate(sample)


def test_unlabelled_data_passes_when_the_target_is_not_required(sample):
    validate(sample.drop(columns=[CONTRACT.target.name]), require_target=False)
