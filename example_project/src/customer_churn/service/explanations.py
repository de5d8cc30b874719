"""Explanations on the service's path: the explainer is built on first use and kept on the model."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..contract import CONTRACT
from ..modeling.explain import Explainer
from ..registry.artifact import load_pipeline


def explain_records(model, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Explanations of validated records for a loaded `ServingModel` (the service's path).

    The explainer (shap and the exact pipeline) is built on first use and kept on the model.
    """
    if model._explainer is None:
        pipeline = model._pipeline or load_pipeline(model.folder, model.manifest)
        details = model.manifest.get("explanation") or {}
        model._explainer = Explainer(pipeline, details.get("background"))
    frame = pd.DataFrame.from_records(records, columns=CONTRACT.feature_names)
    frame[CONTRACT.numeric] = frame[CONTRACT.numeric].astype(float)
    return model._explainer.explain(frame).as_records()
