"""Settings: defaults, environment overrides, clear refusals, and a truthful .env.example."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from customer_churn.settings import ENV_PREFIX, Settings

ENV_EXAMPLE = Path(__file__).parent.parent / ".env.example"
STACK_VARIABLES = {
    "POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD"
}  # fmt: skip


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv(f"{ENV_PREFIX}CV_FOLDS", "7")
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_PATH", "elsewhere/rows.parquet")
    settings = Settings(_env_file=None)
    assert settings.cv_folds == 7 and settings.data_path == Path("elsewhere/rows.parquet")


def test_the_standard_mlflow_variable_is_honoured(monkeypatch):
    monkeypatch.delenv(f"{ENV_PREFIX}TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert Settings(_env_file=None).tracking_uri == "http://mlflow.internal:5000"


def test_a_dotenv_file_is_read(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"{ENV_PREFIX}SEED=123\n")
    assert Settings(_env_file=dotenv).seed == 123


@pytest.mark.parametrize(
    ("name", "value"),
    [("CV_FOLDS", "1"), ("TEST_SIZE", "1.5"), ("SEED", "x"), ("PORT", "http")],
)
def test_bad_values_are_refused_by_name(monkeypatch, name, value):
    monkeypatch.setenv(f"{ENV_PREFIX}{name}", value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings(_env_file=None)


def test_models_are_served_from_the_champion_alias_by_default():
    default = Settings(_env_file=None)
    assert default.model_source == f"models:/{default.registered_model_name}@champion"
    assert default.registered_model_name == "customer-churn"
    local = Settings(_env_file=None, model_uri="", models_dir=Path("artefacts"))
    assert local.model_source == str(Path("artefacts/model"))


def test_promotion_thresholds_come_from_json(monkeypatch):
    monkeypatch.setenv(f"{ENV_PREFIX}PROMOTION_THRESHOLDS", '{"a_metric": 0.5}')
    assert Settings(_env_file=None).promotion_thresholds == {"a_metric": 0.5}


def test_env_example_names_only_real_settings_with_valid_values():
    lines = re.findall(r"(?m)^# ([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text())
    assert lines, ".env.example shows no setting"
    compose = ENV_EXAMPLE.parent / "compose.yaml"
    for variable, value in lines:
        if variable == "MLFLOW_TRACKING_URI":
            continue
        if variable in STACK_VARIABLES:  # read by compose.yaml, not by the settings
            assert compose.is_file() and "${" + variable + ":" in compose.read_text(), variable
            continue
        assert variable.startswith(ENV_PREFIX), variable
        field = variable.removeprefix(ENV_PREFIX).lower()
        assert field in Settings.model_fields, f"{variable} is not a setting"
        Settings(_env_file=None, **{field: value})
