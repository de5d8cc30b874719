"""`contract init`: a contract drafted from a table, refusals and warnings, the written file."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customer_churn.data import validate as validation
from customer_churn.data.contract_file import is_replaceable, render, write
from customer_churn.data.infer import draft, widened
from customer_churn.errors import DataError
from customer_churn.fields import Categorical, Numeric

RUFF_CONFIG = Path(__file__).parents[2] / "ruff.toml"


def table(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """Whole numbers, decimals, categories, missing values and a three-class text label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "visits": rng.integers(0, 40, rows),
            "spend": rng.uniform(10.0, 90.0, rows).round(2),
            "balance": rng.normal(0, 500, rows).round(1),
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "active": rng.choice([True, False], rows),
            "label": rng.choice(["gold", "silver", "bronze"], rows),
        }
    )
    frame.loc[[3, 17], "spend"] = np.nan
    frame.loc[[5], "plan"] = None
    return frame


def load_contract(path):
    """The CONTRACT of a written file, imported as a module of the package."""
    name = "customer_churn._drafted_contract"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CONTRACT


def test_fields_follow_the_columns():
    contract = draft(table(), "label", "classification").contract
    visits, spend, balance, plan, active = contract.features
    assert isinstance(visits, Numeric) and visits.integer and not visits.nullable
    assert visits.minimum == 0, "a column without negative values is not widened below 0"
    assert isinstance(spend, Numeric) and not spend.integer and spend.nullable
    assert spend.minimum < 10.5 and spend.maximum > 89.5
    assert balance.minimum < table()["balance"].min() < 0
    assert isinstance(plan, Categorical) and plan.categories == ("basic", "pro", "team")
    assert plan.nullable
    assert isinstance(active, Numeric) and (active.minimum, active.maximum) == (0, 1)
    assert contract.target.classes == ("bronze", "gold", "silver")
    assert all(f.description == f"TODO: describe {f.name}" for f in contract.features)


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [(0, 72, True, (0, 80)), (32.1, 59.6, False, (29, 63)), (-3.5, 4.1, False, (-4.3, 4.9))],
)
def test_ranges_are_widened_and_rounded(low, high, integer, expected):
    assert widened(low, high, integer) == expected


def test_integer_labels_and_missing_targets():
    frame = table().assign(label=lambda f: f["visits"] % 2)
    frame.loc[[0, 1, 2], "label"] = np.nan
    drafted = draft(frame, "label", "classification")
    assert drafted.contract.target.classes == (0, 1) and drafted.missing_targets == 3


def test_regression_target_has_a_widened_range():
    target = draft(table(), "spend", "regression").contract.target
    assert target.kind == "regression" and target.minimum < 10.5 and target.maximum > 89.5


@pytest.mark.parametrize(
    ("target", "kind", "message"),
    [
        ("balance", "classification", "looks continuous.*problem_type=regression"),
        ("plan", "regression", "holds text.*problem_type=classification"),
        ("single", "classification", "has one class"),
    ],
)
def test_a_target_of_the_wrong_kind_is_refused(target, kind, message):
    frame = table().drop(columns="label").assign(single="yes")
    with pytest.raises(DataError, match=message):
        draft(frame, target, kind, drop=tuple({"single"} - {target}))


def test_columns_that_cannot_be_features_are_refused_together():
    frame = table(120).assign(
        note=[f"customer said thing number {i}" for i in range(120)],
        country="fr",
        signed_up=pd.date_range("2024-01-01", periods=120).strftime("%Y-%m-%d"),
        **{"monthly fee": 1.0 + np.arange(120) % 3},
    )
    with pytest.raises(DataError) as error:
        draft(frame, "label", "classification")
    lines = str(error.value).splitlines()[1:]
    assert len(lines) == 4, lines
    assert "'note' looks like free text" in lines[0]
    assert "'country' holds one value" in lines[1] and "--drop country" in lines[1]
    assert "'signed_up' holds dates" in lines[2] and "weekday" in lines[2]
    assert "rename the column, e.g. to 'monthly_fee'" in lines[3]
    kept = frame.drop(columns=["note", "country", "signed_up", "monthly fee"])
    assert draft(kept, "label", "classification").contract.feature_names[0] == "visits"


def test_identifiers_and_leaks_are_warned_about():
    frame = table().assign(row=range(60), tier=lambda f: "tier-" + f["label"])
    warnings = draft(frame, "label", "classification").warnings
    assert any("'row' looks like an identifier" in w and "--id row" in w for w in warnings)
    assert any("'tier' maps one-to-one onto the target" in w for w in warnings)
    drafted = draft(frame, "label", "classification", identifier="row", drop=("tier",))
    assert drafted.contract.identifier == "row" and drafted.warnings == ()


def test_the_written_contract_round_trips(tmp_path):
    frame = table()
    path = write(render(draft(frame, "label", "classification"), "table.csv"), tmp_path / "c.py")
    contract = load_contract(path)
    assert contract.feature_names == ["visits", "spend", "balance", "plan", "active"]
    assert "TODO: describe visits" in path.read_text() and "widened by 10%" in path.read_text()
    validation.validate(frame, contract=contract)
    with pytest.raises(DataError, match="'plan' fails isin"):
        validation.validate(frame.assign(plan="enterprise"), contract=contract)


def test_an_edited_contract_is_kept_without_force(tmp_path):
    text = render(draft(table(), "label", "classification"), "table.csv")
    path = write(text, tmp_path / "c.py")
    assert is_replaceable(path.read_text())
    write(text, path)  # untouched since it was written: replaced without --force
    path.write_text(text.replace("TODO: describe visits", "Site visits"))
    with pytest.raises(DataError, match="pass --force"):
        write(text, path)
    assert "Site visits" in path.read_text()
    write(text, path, force=True)
    assert path.read_text() == text and [p.name for p in tmp_path.iterdir()] == ["c.py"]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="needs ruff")
def test_the_written_contract_is_formatted_and_clean(tmp_path):
    frame = table().assign(
        long_category_name=lambda f: f["plan"].map(lambda p: f"{p} subscription with extras"),
        big=lambda f: f["visits"] * 1000,
    )
    path = tmp_path / "contract.py"
    write(render(draft(frame, "label", "classification", drop=("plan",)), "table.csv"), path)
    for check in (["format", "--check"], ["check"]):
        command = [sys.executable, "-m", "ruff", *check, "--config", str(RUFF_CONFIG), str(path)]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
