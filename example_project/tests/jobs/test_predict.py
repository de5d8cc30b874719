"""Batch prediction from files and from the registry."""

import pandas as pd
import pytest

from customer_churn.contract import CONTRACT
from customer_churn.data.ingest import load_table, write_table
from customer_churn.errors import DataError, ModelLoadError
from customer_churn.jobs.predict import predict_file, predict_frame
from customer_churn.registry.tracking import ALIAS, load_model


def test_file_in_file_out(model, sample, tmp_path):
    source = write_table(sample.drop(columns=[CONTRACT.target.name]), tmp_path / "in.csv")
    count = predict_file(model, source, tmp_path / "out.parquet")
    result = load_table(tmp_path / "out.parquet")
    assert count == len(sample) == len(result)
    carried = CONTRACT.identifier or CONTRACT.feature_names[0]  # input columns are kept
    pd.testing.assert_series_equal(result[carried], sample[carried], check_dtype=False)
    assert result["prediction"].notna().all()
    assert result["probability"].between(0, 1).all()
    assert set(result["prediction"]) <= set(CONTRACT.target.classes)


def test_invalid_input_writes_nothing(model, sample, tmp_path):
    broken = sample.drop(columns=[CONTRACT.feature_names[0]])
    source = write_table(broken, tmp_path / "in.csv")
    with pytest.raises(DataError, match=f"missing column '{CONTRACT.feature_names[0]}'"):
        predict_file(model, source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_registry_alias_serves_the_same_model(model, trained, settings, sample):
    registered = load_model(f"models:/{settings.registered_model_name}@{ALIAS}", settings)
    assert registered.version == trained.model_version
    pd.testing.assert_frame_equal(predict_frame(registered, sample), predict_frame(model, sample))


@pytest.mark.parametrize("uri", ["does/not/exist", "models:/no-such-model@champion"])
def test_unknown_models_are_reported(settings, uri):
    with pytest.raises(ModelLoadError, match=r"no-such-model|no model at 'does/not/exist'"):
        load_model(uri, settings)
