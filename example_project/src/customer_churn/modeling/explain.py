"""Per-prediction explanations: how much each contract feature moved one answer.

The library is SHAP (`shap`): its TreeExplainer computes exact Shapley values of tree
ensembles (HistGradientBoosting, RandomForest, LightGBM, XGBoost) in compiled code, in about
a millisecond per record, and its LinearExplainer does the same for linear models; both are
additive, so the base value plus the contributions equals the model's raw output. It is
maintained, and it installs and imports here with numpy 2, pandas 3 and scikit-learn 1.9
without numba.

SHAP sees the model after preprocessing, where one categorical feature is several one-hot
columns: their contributions are summed back to the feature, and a numeric feature's is the
contribution of its (imputed, perhaps scaled) column, so every explanation is in the
contract's feature names.

The raw output explained is the model's margin: the log-odds of the positive class for
gradient boosting (LightGBM and XGBoost included) and logistic regression, its probability
for a random forest (it averages probabilities), the predicted value for a regressor.
Beyond two classes each answer is explained for the class it predicts (that class's margin
or probability).
Explanations are of the exact scikit-learn pipeline; the service's ONNX graph computes in
float32 and may differ slightly.

`shap` is a training-group dependency: the serving install leaves it out, and the service
then answers `?explain=true` with 501 and how to enable it. The explainer needs the exact
pipeline (pipeline.skops of the export folder) and is built on the first request that asks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..contract import CONTRACT
from ..errors import ProjectError
from ..features import library_of


class ExplanationUnavailable(ProjectError):
    """Explanations cannot be computed in this installation."""


INSTALL_HINT = (
    "explanations need the 'shap' package, which the serving install leaves out: install it "
    "beside the service (`uv sync --group train`, or `pip install shap`) and restart"
)


def _shap():
    try:
        import shap
    except ImportError as error:
        raise ExplanationUnavailable(f"{INSTALL_HINT} ({error})") from None
    return shap


def _is_linear(model) -> bool:
    return hasattr(model, "coef_")


# How a gradient boosting library's `predict` answers with the margin instead of the class.
MARGIN_OPTION = {"lightgbm": {"raw_score": True}, "xgboost": {"output_margin": True}}


def has_margin(model) -> bool:
    return library_of(model) in MARGIN_OPTION or hasattr(model, "decision_function")


def margin(model, encoded) -> np.ndarray | None:
    """A classifier's raw margin on encoded rows (log-odds, or one raw score per class beyond
    two), which SHAP explains for it; None for a model without one (a random forest)."""
    option = MARGIN_OPTION.get(library_of(model))
    if option:
        return np.asarray(model.predict(encoded, **option), dtype=float)
    if hasattr(model, "decision_function"):
        return np.asarray(model.decision_function(encoded), dtype=float)
    return None


def output_space(model) -> str:
    """What the explained raw output is, in words."""
    if CONTRACT.target.kind == "regression":
        return f"predicted {CONTRACT.target.name}"
    positive = CONTRACT.target.positive
    margin = has_margin(model)
    if positive is None:  # more than two classes: each answer's predicted class
        return f"{'raw score' if margin else 'probability'} of the predicted class"
    return f"{'log-odds' if margin else 'probability'} of {CONTRACT.target.name} = {positive}"


def raw_output(pipeline, frame: pd.DataFrame) -> np.ndarray:
    """The model output that base value + contributions add up to (see `output_space`)."""
    features = frame[CONTRACT.feature_names]
    if CONTRACT.target.kind == "regression":
        return np.asarray(pipeline.predict(features), dtype=float)
    encoded = pipeline.named_steps["preprocess"].transform(features)
    output = margin(pipeline.named_steps["model"], encoded)
    if output is None:
        output = np.asarray(pipeline.predict_proba(features), dtype=float)
    if output.ndim == 1:
        return output
    if not CONTRACT.target.multiclass:
        return output[:, -1]
    predicted = pipeline.predict_proba(features).argmax(axis=1)
    return output[np.arange(len(output)), predicted]


def background(pipeline, train_frame: pd.DataFrame) -> list[float] | None:
    """What a linear model's contributions are measured from: the mean encoded training row.

    Tree explainers need none (they use the trees' own training counts), so None for them.
    """
    if not _is_linear(pipeline.named_steps["model"]):
        return None
    encoded = pipeline.named_steps["preprocess"].transform(train_frame[CONTRACT.feature_names])
    return [float(v) for v in np.asarray(encoded, dtype=float).mean(axis=0)]


def column_to_feature(preprocess) -> np.ndarray:
    """A 0/1 matrix (encoded columns x contract features) that sums one-hot columns back."""
    matrix = np.zeros((len(preprocess.get_feature_names_out()), len(CONTRACT.features)))
    index = {name: i for i, name in enumerate(CONTRACT.feature_names)}
    for name, step, columns in preprocess.transformers_:
        if name == "remainder" or step == "drop":
            continue
        where = preprocess.output_indices_[name]
        widths = [1] * len(columns)
        encoder = step[-1] if hasattr(step, "steps") else step
        if hasattr(encoder, "categories_"):
            widths = [len(categories) for categories in encoder.categories_]
        start = where.start
        for column, width in zip(columns, widths, strict=True):
            matrix[start : start + width, index[column]] = 1.0
            start += width
        if start != where.stop:
            raise ProjectError(
                f"cannot map the encoded columns of '{name}' back to contract features"
            )
    return matrix


@dataclass
class Explanations:
    base_value: np.ndarray  # per record (the explained class's, beyond two classes)
    contributions: np.ndarray  # (records, contract features)
    output: np.ndarray  # base_value + contributions summed, per record
    space: str

    def as_records(self) -> list[dict[str, Any]]:
        return [
            {
                "output": float(output),
                "base_value": float(base),
                "output_space": self.space,
                "contributions": {
                    name: float(value)
                    for name, value in zip(CONTRACT.feature_names, row, strict=True)
                },
            }
            for row, output, base in zip(
                self.contributions, self.output, self.base_value, strict=True
            )
        ]

    def mean_absolute(self) -> pd.Series:
        """Average size of each feature's contribution: a global view from local ones."""
        values = np.abs(self.contributions).mean(axis=0)
        return pd.Series(values, index=CONTRACT.feature_names).sort_values(ascending=False)


class Explainer:
    """SHAP on the pipeline's model, reported per contract feature."""

    def __init__(self, pipeline, background_row: list[float] | None = None) -> None:
        shap = _shap()
        self.pipeline = pipeline
        self.preprocess = pipeline.named_steps["preprocess"]
        self.model = pipeline.named_steps["model"]
        self.matrix = column_to_feature(self.preprocess)
        self.space = output_space(self.model)
        if _is_linear(self.model):
            if background_row is None:
                raise ExplanationUnavailable(
                    "a linear model's explanation needs its background (the mean encoded "
                    "training row): re-export the model"
                )
            self._explainer = shap.LinearExplainer(self.model, np.asarray([background_row]))
        else:
            self._explainer = shap.TreeExplainer(self.model)

    def explain(self, frame: pd.DataFrame) -> Explanations:
        encoded = self.preprocess.transform(frame[CONTRACT.feature_names])
        with warnings.catch_warnings():  # SHAP's note on its own output format, every call
            warnings.filterwarnings("ignore", "LightGBM binary classifier", UserWarning)
            values = np.asarray(self._explainer.shap_values(encoded), dtype=float)
        base = np.asarray(self._explainer.expected_value, dtype=float).ravel()
        chosen = np.zeros(len(encoded), dtype=int)
        if values.ndim == 3:  # one slice per class: the positive one, or the predicted one
            chosen += values.shape[2] - 1
            if CONTRACT.target.multiclass:
                chosen = self.pipeline.predict_proba(frame[CONTRACT.feature_names]).argmax(axis=1)
            values = values[np.arange(len(values)), :, chosen]
        bases = base[chosen] if len(base) > 1 else np.repeat(base[:1], len(encoded))
        contributions = values @ self.matrix
        return Explanations(bases, contributions, bases + contributions.sum(axis=1), self.space)
