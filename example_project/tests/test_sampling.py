"""Rows sampled from a contract: valid, deterministic, gaps only where allowed, every class
present, and a target a model learns, for contracts of any shape the vocabulary allows."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score

from customer_churn.contract import CONTRACT
from customer_churn.data.validate import validate
from customer_churn.features import build_pipeline, features_of
from customer_churn.fields import Categorical, Contract, Numeric, Target
from customer_churn.sampling import sample_rows

MIXED = (
    Numeric("count", "A nullable whole number", 0, 20, integer=True),
    Numeric("level", "A number bounded below", minimum=5),
    Numeric("offset", "An unbounded number", nullable=False),
    Numeric("steps", "A required whole number", -3, 3, integer=True, nullable=False),
    Categorical("colour", "A nullable category", ("red", "green", "blue")),
    Categorical("size", "A required category", ("s", "m", "l", "xl"), nullable=False),
)


def mixed(classes=(0, 1), identifier=None) -> Contract:
    return Contract(MIXED, Target("label", "The class", "classification", classes), identifier)


def test_rows_follow_the_project_contract_and_the_seed():
    first, again, other = sample_rows(300, seed=3), sample_rows(300, seed=3), sample_rows(300, 4)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    validate(first)
    unlabelled = sample_rows(300, seed=3, labelled=False)
    pd.testing.assert_frame_equal(unlabelled, first.drop(columns=[CONTRACT.target.name]))


def test_gaps_fall_only_in_nullable_features():
    frame = sample_rows(400, seed=1, contract=mixed(), missing_share=0.2)
    validate(frame, contract=mixed())
    for feature in MIXED:
        share = frame[feature.name].isna().mean()
        assert (0.1 < share < 0.3) if feature.nullable else share == 0, feature.name
    assert not sample_rows(400, seed=1, contract=mixed(), missing_share=0).isna().any().any()


def test_columns_have_the_types_of_their_features():
    frame = sample_rows(50, seed=2, contract=mixed(identifier="key"))
    assert str(frame["count"].dtype) == "Int64" and str(frame["steps"].dtype) == "int64"
    assert frame["level"].dtype == float and (frame["level"] >= 5).all()
    assert pd.api.types.is_string_dtype(frame["colour"]) and frame["colour"].isna().any()
    assert frame["size"].isin(["s", "m", "l", "xl"]).all()
    assert frame["key"].is_unique and frame.columns[0] == "key"
    assert "key" not in sample_rows(50, seed=2, contract=mixed()).columns


@pytest.mark.parametrize("classes", [(0, 1), (1, 2, 3, 4, 5), ("low", "mid", "high"), ("n", "y")])
def test_every_class_is_drawn_often(classes):
    labels = sample_rows(500, seed=5, contract=mixed(classes))["label"]
    shares = labels.value_counts(normalize=True)
    assert set(shares.index) == set(classes) and shares.min() >= 0.1, shares
    assert all(isinstance(label, type(classes[0])) for label in labels)
    if isinstance(classes[0], int):
        assert labels.dtype == np.int64


def test_a_regression_target_stays_in_its_range():
    target = Target("amount", "A bounded amount", "regression", minimum=10, maximum=20)
    frame = sample_rows(500, seed=6, contract=Contract(MIXED, target))
    assert frame["amount"].between(10, 20).all() and frame["amount"].std() > 1


def test_sizes_and_shares_out_of_range_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        sample_rows(0)
    with pytest.raises(ValueError, match="missing_share"):
        sample_rows(10, missing_share=1.0)


# ----------------------------------------------------------------------- random contracts
LABELS = st.integers(-5, 50) | st.text("abcdefgh", min_size=1, max_size=6)


@st.composite
def numerics(draw, name: str) -> Numeric:
    low = draw(st.none() | st.floats(-1e4, 1e4))
    integer, nullable = draw(st.booleans()), draw(st.booleans())
    # Two whole numbers at least fit a whole-number range: one value would be a constant.
    width = draw(st.floats(2 if integer else 1, 1e4))
    high = draw(st.none() | st.just(width if low is None else low + width))
    return Numeric(name, name, low, high, integer=integer, nullable=nullable)


@st.composite
def categoricals(draw, name: str) -> Categorical:
    values = draw(
        st.lists(st.text("xyz-_ ", min_size=1, max_size=5), min_size=1, max_size=5, unique=True)
    )
    return Categorical(name, name, tuple(values), nullable=draw(st.booleans()))


@st.composite
def targets(draw) -> Target:
    if draw(st.booleans()):
        low = draw(st.none() | st.floats(-100, 100))
        high = draw(st.none() | st.floats(1, 100).map(lambda w: (low or 0) + w))
        return Target("target", "target", "regression", minimum=low, maximum=high)
    kind = draw(st.sampled_from([int, str]))
    labels = st.lists(
        LABELS.filter(lambda v: isinstance(v, kind)), min_size=2, max_size=5, unique=True
    )
    return Target("target", "target", "classification", tuple(draw(labels)))


@st.composite
def contracts(draw) -> Contract:
    numbers = [draw(numerics(f"n{i}")) for i in range(draw(st.integers(0, 4)))]
    categories = [draw(categoricals(f"c{i}")) for i in range(draw(st.integers(0, 3)))]
    # Something to learn from: a number, or a category with two values or more.
    assume(numbers or any(len(c.categories) > 1 for c in categories))
    features = draw(st.permutations([*numbers, *categories]))
    identifier = draw(st.none() | st.just("row_id"))
    return Contract(tuple(features), draw(targets()), identifier)


# derandomize: the same 30 contracts on every run, so a run fails only for a change of code.
@settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(contract=contracts(), seed=st.integers(0, 2**16))
def test_any_contract_gives_valid_rows_with_a_learnable_target(contract, seed):
    train = validate(sample_rows(600, seed, contract=contract), contract=contract)
    held = validate(sample_rows(400, seed + 1, contract=contract), contract=contract)
    target = contract.target
    if target.kind == "regression":
        model = build_pipeline(Ridge(), contract, scale=True)  # linear: standardised
        model.fit(features_of(train, contract), train[target.name])
        predicted = model.predict(features_of(held, contract))
        assert r2_score(held[target.name], predicted) > 0.5
        return
    assert set(train[target.name]) == set(target.classes)
    model = build_pipeline(LogisticRegression(max_iter=1000), contract, scale=True)
    model.fit(features_of(train, contract), train[target.name])
    accuracy = (model.predict(features_of(held, contract)) == held[target.name]).mean()
    majority = held[target.name].value_counts(normalize=True).max()
    assert accuracy > majority + 0.05, (accuracy, majority)
