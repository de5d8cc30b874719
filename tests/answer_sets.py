"""The answer sets the template is tested with: every problem type x model family, and a
non-default value of every other question (the deployment ones spread over the same sets)."""

ANSWER_SETS: dict[str, dict[str, str | bool]] = {
    "defaults": {},
    "classification-random_forest": {
        "model_family": "random_forest",
        "python_version": "3.13",
        "license": "BSD-3-Clause",
        "kubernetes": False,
    },
    "classification-linear": {
        "model_family": "linear",
        "python_version": "3.11",
        "license": "Proprietary",
        "ci_provider": "gitlab",
        "monitoring": False,  # the compose stack without Prometheus and Grafana
        "dashboard": False,  # the service without its page for people
    },
    "classification-lightgbm": {"model_family": "lightgbm", "python_version": "3.11"},
    "classification-xgboost": {"model_family": "xgboost", "kubernetes": False},
    "regression-hist_gradient_boosting": {"problem_type": "regression", "docker": False},
    "regression-lightgbm": {
        "problem_type": "regression",
        "model_family": "lightgbm",
        "ci_provider": "gitlab",
    },
    "regression-xgboost": {
        "problem_type": "regression",
        "model_family": "xgboost",
        "python_version": "3.13",
        "monitoring": False,
    },
    "regression-random_forest": {
        "problem_type": "regression",
        "model_family": "random_forest",
        "python_version": "3.13",
        "license": "Apache-2.0",
        "ci_provider": "none",
    },
    "regression-linear": {
        "problem_type": "regression",
        "model_family": "linear",
        "python_version": "3.11",
        "docker": False,
        "ci_provider": "gitlab",
    },
    # Training, registry and batch prediction only: no service, hence no container either.
    "batch-only": {
        "serving": False,
        "monitoring": False,
        "docker": False,
        "ci_provider": "github",
        "model_family": "linear",
        "spark": True,  # Spark without the service: a batch-only project that outgrew one machine
    },
    # Spark as a batch engine beside the default project; tests/test_spark.py runs its Spark tests.
    "spark": {"spark": True},
    "custom-names": {
        "project_name": "Fraud Radar",
        "package_name": "fraud_radar_core",
        "description": "Flags risky card payments before they settle.",
        "author_name": "Risk Analytics",
        "author_email": "risk.analytics@bank.example",
        "copyright_year": "2024-2026",
        "license": "Apache-2.0",
    },
}
