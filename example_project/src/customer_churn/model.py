"""The estimator and its hyperparameters: the file to edit when you change the model."""

from sklearn.ensemble import HistGradientBoostingClassifier

PARAMS = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 30,
    "l2_regularization": 1.0,
    "early_stopping": True,  # stops adding trees when a held-out 10% stops improving
}


def build_estimator(seed: int, **overrides):
    """A fresh, unfitted estimator with PARAMS, updated by `overrides`."""
    return HistGradientBoostingClassifier(random_state=seed, **{**PARAMS, **overrides})
