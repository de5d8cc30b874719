"""The example-data generator, file input/output and the split."""

import os
from pathlib import Path

import pandas as pd
import pytest

from customer_churn.contract import CONTRACT
from customer_churn.data.files import write_text
from customer_churn.data.ingest import load_table, split, write_table
from customer_churn.data.validate import validate
from customer_churn.errors import DataError
from customer_churn.sampling import sample_rows
from customer_churn.settings import Settings
from customer_churn.synthetic import generate
from tests.conftest import example_only

BUNDLED = Path(__file__).parents[2] / Settings(_env_file=None).data_path


@example_only
def test_generator_is_deterministic_and_follows_the_contract():
    first, again, other = generate(300, seed=3), generate(300, seed=3), generate(300, seed=4)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    validate(first)
    assert first[CONTRACT.feature_names].isna().any().any(), "the example data has missing values"


@example_only
def test_generator_has_signal_in_the_target():
    frame = generate(5000, seed=1)
    target = frame[CONTRACT.target.name]
    assert 0.1 < target.mean() < 0.6
    # Month-to-month customers churn more than two-year ones.
    by_contract = target.groupby(frame["contract_type"]).mean()
    assert by_contract["month-to-month"] > 2 * by_contract["two-year"]


def test_generator_refuses_a_non_positive_size():
    with pytest.raises(ValueError, match="at least 1"):
        generate(0)


@example_only
def test_bundled_data_is_the_generator_output(tmp_path):
    """The shipped example file is `data --rows 2000 --seed 42`; delete this test with your data."""
    fresh = write_table(generate(2000, seed=42), tmp_path / BUNDLED.name)
    pd.testing.assert_frame_equal(load_table(BUNDLED), load_table(fresh))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_round_trip(tmp_path, suffix):
    frame = sample_rows(50, seed=2)
    path = write_table(frame, tmp_path / f"rows{suffix}")
    pd.testing.assert_frame_equal(load_table(path), frame, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file is left"


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = write_table(sample_rows(10, seed=2), tmp_path / "rows.csv")
    before = path.read_bytes()

    def broken(self, target, **kwargs):
        Path(target).write_text("half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table(sample_rows(20, seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["rows.csv"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("rows.txt", "a,b\n1,2\n", "unsupported file type '.txt'"),
        ("missing.csv", None, "no such file"),
        ("empty.csv", "", "cannot be read"),
        ("header.csv", "a,b\n", "holds no rows"),
        ("broken.parquet", "not parquet", "cannot be read"),
    ],
)
def test_unreadable_files_are_named(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as error:
        load_table(path)
    assert name in str(error.value)


def test_split_is_seeded_and_disjoint():
    frame = sample_rows(500, seed=5).assign(row=range(500))
    train, test = split(frame, 0.2, seed=1)
    again, _ = split(frame, 0.2, seed=1)
    assert len(test) == 100 and len(train) == 400
    pd.testing.assert_frame_equal(train, again)
    assert not set(train["row"]) & set(test["row"])
    assert set(train["row"]) | set(test["row"]) == set(range(500))
    target = CONTRACT.target.name
    shares = [part[target].value_counts(normalize=True) for part in (train, test)]
    assert shares[0].sub(shares[1], fill_value=0).abs().max() < 0.02, "the split is stratified"


def test_files_are_written_whole_with_the_usual_mode(tmp_path):
    """A temporary file is made 0600: what replaces the target must get the mode the umask
    gives any new file, as the contract, reports and tables are read by others too."""
    previous = os.umask(0o022)
    try:
        path = write_text(tmp_path / "notes" / "café.txt", "déjà vu\n")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.read_text(encoding="utf-8") == "déjà vu\n"
    assert [p.name for p in path.parent.iterdir()] == ["café.txt"], "no temporary file is left"
