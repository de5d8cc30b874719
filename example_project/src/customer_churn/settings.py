"""Typed settings: defaults here, overridden by environment variables or a `.env` file."""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CUSTOMER_CHURN_"


class Settings(BaseSettings):
    """Every path, address and knob of the project.

    Each field is read from `CUSTOMER_CHURN_<FIELD>`; relative paths are taken from
    the working folder.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_by_name=True
    )

    # Data
    data_path: Path = Path("data/customers.csv")
    models_dir: Path = Path("models")
    reports_dir: Path = Path("reports")

    # Training
    seed: int = 42
    test_size: float = Field(0.2, gt=0, lt=1)
    cv_folds: int = Field(5, ge=2, le=20)

    # Tracking and registry (MLflow). MLFLOW_TRACKING_URI is honoured too.
    tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        validation_alias=AliasChoices(f"{ENV_PREFIX}TRACKING_URI", "MLFLOW_TRACKING_URI"),
    )
    artifact_location: Path = Path("mlartifacts")
    experiment_name: str = "customer-churn"
    registered_model_name: str = "customer-churn"

    # Serving and batch prediction: a local export folder or a models:/NAME@ALIAS URI;
    # empty means the export of the last training run (models_dir/model).
    model_uri: str = ""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_batch_size: int = Field(1000, ge=1)

    @property
    def export_dir(self) -> Path:
        """Where training writes the model that serving loads by default."""
        return self.models_dir / "model"

    @property
    def model_source(self) -> str:
        """The model that `serve`, `predict` and `evaluate` load."""
        return self.model_uri or str(self.export_dir)


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
