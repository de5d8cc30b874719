"""Preprocessing built from the feature contract, fitted and saved inside the model pipeline."""

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .contract import CONTRACT
from .fields import Categorical, Contract
from .model import SCALE_NUMBERS


def build_preprocessor(
    contract: Contract = CONTRACT, scale: bool = SCALE_NUMBERS
) -> ColumnTransformer:
    """Impute numbers, and standardise them if `scale` (model.py says whether its estimator
    needs it); one-hot encode categories.

    A missing or unknown category encodes to all zeros: no imputer guesses a value, and the
    pipeline converts to ONNX as it is (its string imputer cannot take NaN).
    """
    numeric = make_pipeline(
        SimpleImputer(strategy="median"), *([StandardScaler()] if scale else [])
    )
    categorical = make_pipeline(
        OneHotEncoder(
            categories=[
                list(f.categories) for f in contract.features if isinstance(f, Categorical)
            ],
            handle_unknown="ignore",
            sparse_output=False,
        ),
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, contract.numeric),
            ("categorical", categorical, contract.categorical),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def build_pipeline(
    estimator, contract: Contract = CONTRACT, scale: bool = SCALE_NUMBERS
) -> Pipeline:
    """The full model: contract preprocessing (numbers standardised if `scale`) followed by
    the estimator."""
    preprocess = build_preprocessor(contract, scale)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def library_of(estimator) -> str:
    """The library an estimator comes from ("sklearn", "lightgbm", "xgboost"), looking past
    the subclasses this package defines (such as model.py's LabelledXGBClassifier)."""
    package = __package__.split(".")[0]
    modules = (base.__module__.split(".")[0] for base in type(estimator).__mro__)
    return next(module for module in modules if module != package)


def features_of(frame: pd.DataFrame, contract: Contract = CONTRACT) -> pd.DataFrame:
    """The contract's feature columns, in contract order."""
    return frame[contract.feature_names]


def records_of(frame: pd.DataFrame, contract: Contract = CONTRACT) -> list[dict]:
    """The rows' features as the service takes them in JSON: a missing value as None, and an
    integer feature as the nearest int (pandas holds a column with a gap as floats, drifted
    traffic may scale it, and the API refuses 38.0 where the contract says integer)."""
    rows = features_of(frame, contract).astype(object)
    records = rows.where(rows.notna(), None).to_dict(orient="records")
    for record in records:
        for name in contract.integers:
            if record[name] is not None:
                record[name] = round(record[name])
    return records
