import pytest

from customer_churn.contract import CONTRACT
from customer_churn.fields import Categorical, Contract, Numeric, Target


def test_contract_declares_features_and_target():
    assert CONTRACT.features
    assert set(CONTRACT.numeric) | set(CONTRACT.categorical) == set(CONTRACT.feature_names)
    assert CONTRACT.target.name not in CONTRACT.feature_names


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ((Numeric("a", ""), Numeric("a", "")), "duplicate feature names"),
        ((Numeric("y", ""),), "is also a feature"),
        ((Categorical("c", "", ()),), "has no categories"),
        ((Numeric("n", "", 5, 1),), "minimum > maximum"),
    ],
)
def test_inconsistent_contracts_are_refused(features, message):
    with pytest.raises(ValueError, match=message):
        Contract(features=features, target=Target("y", "", "regression"))
