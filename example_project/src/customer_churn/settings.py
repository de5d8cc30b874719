"""Typed settings: defaults here, overridden by environment variables or a `.env` file."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
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
    # What `tune` found best: `train` uses it over model.py's PARAMS while the file exists.
    # Commit it with the code, so that a training run can be repeated from the repository.
    tuned_params_path: Path = Path("tuned_params.json")

    # Tracking and registry (MLflow). MLFLOW_TRACKING_URI is honoured too.
    tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        validation_alias=AliasChoices(f"{ENV_PREFIX}TRACKING_URI", "MLFLOW_TRACKING_URI"),
    )
    artifact_location: Path = Path("mlartifacts")
    experiment_name: str = "customer-churn"
    registered_model_name: str = "customer-churn"

    # Export: the largest ONNX-vs-pipeline difference accepted on the holdout (probability for
    # a classifier, standard deviations of the target for a regressor); beyond it, serve exactly.
    onnx_tolerance: float = Field(0.1, ge=0)

    # Promotion gate: absolute thresholds on holdout metrics (minimums, or maximums for error
    # metrics) and the margin by which a challenger must beat the champion's primary metric.
    promotion_thresholds: dict[str, float] = {"roc_auc": 0.75}
    promotion_margin: float = 0.001
    # The skill over the baseline (a model that ignores the features: modeling/baseline.py)
    # the challenger must reach on the primary metric: the share of the possible improvement
    # over the baseline it makes (0: no better than the baseline, 1: perfect).
    min_skill_over_baseline: float = Field(0.1, ge=0, le=1)
    # Limits beyond accuracy (None: no limit). The largest gap of the segment metric (ROC AUC)
    # between values of any segment or protected feature, on the holdout; the single-record
    # p99 latency and the size of the serving artifact, from the profile measured at training.
    max_segment_gap: float | None = Field(0.2, ge=0)
    max_p99_latency_ms: float | None = Field(50.0, gt=0)
    max_artifact_mb: float | None = Field(100.0, gt=0)
    # Notifications: a `train` or `promote` that fails, or a version the gate refuses, is
    # posted to this URL as Slack-compatible JSON ({"text": ...}); empty: no notification.
    # The URL is a secret (it lets anyone post): keep it in .env or the CI's secrets.
    notify_webhook_url: SecretStr | None = None

    # Evaluation: segment values with fewer holdout rows are listed but not compared; the
    # production profile times this many single-record calls and batches of this size.
    segment_min_rows: int = Field(30, ge=1)
    profile_single_runs: int = Field(300, ge=10)
    profile_batch_size: int = Field(1000, ge=1)
    profile_batch_runs: int = Field(20, ge=1)

    # Serving, batch prediction and evaluation: a models:/NAME@ALIAS URI or a local export
    # folder; empty means the export of the last training run (models_dir/model).
    model_uri: str = "models:/customer-churn@champion"
    serving_backend: Literal["onnx", "sklearn"] = "onnx"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_batch_size: int = Field(1000, ge=1)
    max_body_bytes: int = Field(2_000_000, ge=1024)
    # When set, /predict and /admin/* require it in the X-API-Key header.
    api_key: SecretStr | None = None
    # Origins allowed to call the API from a browser; none by default.
    cors_origins: list[str] = []
    log_format: Literal["json", "text"] = "json"
    access_log: bool = True
    # The event loop: "uvloop" (the `uvloop` group) answers about 8% more requests/s to
    # clients that keep their connections open (a proxy, an ingress), but it accepts one new
    # connection per pass of the loop: at twice the capacity, new connections waited seconds,
    # unseen by the load shedding. "asyncio" accepts every waiting connection at once.
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # Overload and time limits: shed requests (503, Retry-After) when work waits more than
    # `max_queue_delay_ms` to start; refuse connections beyond `max_connections` (uvicorn's
    # limit); give up on a request after `request_timeout` seconds (504); on SIGTERM, finish
    # the requests in flight for at most `shutdown_timeout` seconds.
    max_queue_delay_ms: float = Field(100.0, gt=0)
    max_connections: int = Field(1000, ge=1)
    request_timeout: float = Field(30.0, gt=0)
    shutdown_timeout: float = Field(20.0, gt=0)
    # The prediction log (inputs and answers, for the drift job): off the request path,
    # bounded, rotating. A sample rate below 1 logs that share of requests.
    prediction_log: bool = True
    prediction_log_dir: Path = Path("logs/predictions")
    prediction_log_sample_rate: float = Field(1.0, ge=0, le=1)
    prediction_log_max_bytes: int = Field(50_000_000, ge=10_000)
    prediction_log_keep_files: int = Field(20, ge=1)
    prediction_log_queue: int = Field(10_000, ge=1)
    # Rollout of a challenger beside the champion (`model_uri`): "single" serves the champion
    # only; "split" answers `rollout_share` of the traffic with the challenger, chosen by a
    # hash of the `rollout_key_header` header (one key always meets the same model; without
    # the header, the request id decides); "shadow" answers with the champion and scores every
    # request with the challenger too, off the request path, into the prediction log.
    # `shadow_queue` bounds the requests waiting for the challenger (beyond it they are skipped).
    rollout_mode: Literal["single", "split", "shadow"] = "single"
    challenger_uri: str = "models:/customer-churn@challenger"
    rollout_share: float = Field(0.1, ge=0, le=1)
    rollout_key_header: str = Field("x-rollout-key", pattern=r"^[A-Za-z0-9-]+$")
    shadow_queue: int = Field(1000, ge=1)

    # Monitoring: the drift job compares the last `drift_window` logged records with the
    # training reference. A numeric feature drifts when its PSI exceeds `drift_psi_threshold`;
    # a categorical one when its Jensen-Shannon distance exceeds `drift_js_threshold`. The
    # job fails (exit 1) when the share of drifted features reaches `drift_share_threshold`,
    # when the predictions drift, or when the primary metric on labelled records is worse
    # than the holdout's by more than `drift_max_metric_decay` (relative: 0.1 is 10%).
    monitoring_dir: Path = Path("logs/monitoring")
    drift_window: int = Field(1000, ge=1)
    drift_min_records: int = Field(100, ge=10)
    drift_psi_threshold: float = Field(0.2, gt=0)
    drift_js_threshold: float = Field(0.1, gt=0, le=1)
    drift_share_threshold: float = Field(0.3, gt=0, le=1)
    drift_max_metric_decay: float = Field(0.1, ge=0)
    # Rollout comparison (same job, on the same window): each variant needs
    # `rollout_min_records` logged records; the challenger may be promoted when its live primary
    # metric is no worse than the champion's by more than `rollout_max_metric_loss` (absolute),
    # or, before labels arrive, when it agrees with the champion on at least
    # `rollout_min_agreement` of the shadowed records (a regression answer agrees within
    # `rollout_agreement_tolerance`, relative) and its predictions do not drift from them.
    rollout_min_records: int = Field(100, ge=1)
    rollout_max_metric_loss: float = Field(0.0, ge=0)
    rollout_min_agreement: float = Field(0.9, ge=0, le=1)
    rollout_agreement_tolerance: float = Field(0.1, gt=0)
    # Retraining relay (`retrain-relay`): Alertmanager's drift alerts start one run of the
    # training workflow of `retrain_ci`: GitHub's workflow_dispatch of train.yml in
    # `retrain_repository` (OWNER/REPO), or GitLab's pipeline trigger of the project
    # `retrain_repository` (its id or path), on the branch `retrain_ref`. `retrain_api_url`
    # empty means the public service's API. `retrain_token` is a secret: a GitHub token allowed
    # to write Actions on the repository, or a GitLab pipeline trigger token. After a run is
    # started, alerts start no other for `retrain_cooldown` seconds; an alert already relayed
    # (the same alert, firing since the same time) never starts a second one.
    retrain_ci: Literal["github", "gitlab"] = "github"
    retrain_api_url: str = ""
    retrain_repository: str = ""
    retrain_ref: str = "main"
    retrain_token: SecretStr | None = None
    retrain_cooldown: float = Field(3600.0, ge=0)
    retrain_timeout: float = Field(10.0, gt=0)

    @field_validator("max_segment_gap", "max_p99_latency_ms", "max_artifact_mb", mode="before")
    @classmethod
    def _no_limit(cls, value):
        """An empty value, or "none", lifts a limit."""
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
            return None
        return value

    @field_validator("notify_webhook_url", "retrain_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        """An empty secret (`VAR=` in .env, an unset CI secret) is no secret."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _rollout_needs_a_challenger(self):
        if self.rollout_mode != "single" and not self.challenger_uri.strip():
            raise ValueError(
                f"rollout_mode '{self.rollout_mode}' needs a challenger: set challenger_uri to "
                "a models:/NAME@ALIAS URI or an export folder, or use rollout_mode 'single'"
            )
        return self

    @field_validator("rollout_key_header")
    @classmethod
    def _header_in_lower_case(cls, value: str) -> str:
        """ASGI spells header names in lower case."""
        return value.lower()

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
