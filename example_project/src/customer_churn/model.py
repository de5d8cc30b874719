"""The estimator, its hyperparameters and the space `tune` searches: the file to edit when you
change the model."""

from sklearn.ensemble import HistGradientBoostingClassifier

PARAMS = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 30,
    "l2_regularization": 1.0,
    "early_stopping": True,  # stops adding trees when a held-out 10% stops improving
}

# Whether numeric features are standardised before the estimator: a linear model needs it;
# trees split on order alone, and the ONNX graph's float32 scaling could move a value across
# a split that sits exactly on a training value (XGBoost's do).
SCALE_NUMBERS = False


def build_estimator(seed: int, **overrides):
    """A fresh, unfitted estimator with PARAMS, updated by `overrides`."""
    return HistGradientBoostingClassifier(random_state=seed, **{**PARAMS, **overrides})


def search_space(trial) -> dict:
    """The hyperparameters `tune` tries (an Optuna trial's suggestions): they override PARAMS,
    and the best ones found are what the next `train` uses (see README, "Tuning")."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 7, 63, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-3, 10.0, log=True),
    }
