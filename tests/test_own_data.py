"""Tier 3 on tables a user brings: real public data (tests/public_tables.py) goes from
`contract init` to a served prediction and a passing `make test`, with no hand edit.

- penguins: three text classes on the default rendering, by the commands of
  docs/how-to/own-data.md, `make run` and `make test` as the page says (its load tests left
  out);
- penguins again, on the XGBoost rendering: its text classes through the labelled
  classifier and the ONNX graph, to the project's tests without its load tests;
- cars: regression (LightGBM), after `contract init` refused a name and a date column, to the
  project's tests without its load tests;
- biopsy: two text classes on the linear rendering, after a champion of the example: the
  promotion across the contract change says what it did.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import public_tables
from docs_site import documented_commands
from harness import python_for, read_answers
from running import Installed, free_port, install_rendering, post_json, wait_until_answers

pytestmark = pytest.mark.slow
PENGUIN = {
    "island": "Biscoe", "bill_length_mm": 47.5, "bill_depth_mm": 14.8,
    "flipper_length_mm": 217, "body_mass_g": 5200, "sex": None, "year": 2008,
}  # fmt: skip


def own_project(rendered, tmp_path: Path, name: str) -> Installed:
    """A fresh copy of answer set `name`'s rendering, installed, its outputs under tmp_path."""
    answers = read_answers(rendered(name))
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} ON THIS MACHINE: cannot install {name}")
    folder = Path(shutil.copytree(rendered(name), tmp_path / "project"))
    (tmp_path / "work").mkdir()
    installed = install_rendering(folder, tmp_path / "work")
    installed.env[f"{installed.package.upper()}_PORT"] = str(free_port())
    return installed


def bash(project: Installed, command: str, expect: int = 0) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=project.folder, env=project.env,
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == expect, f"`{command}` gave {result.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
    return output


def predict_served(project: Installed, records: list[dict]) -> dict:
    url = f"http://127.0.0.1:{project.env[f'{project.package.upper()}_PORT']}"
    return post_json(f"{url}/predict", records)


def test_the_own_data_page_takes_penguins_to_a_served_model(rendered, tmp_path):
    project = own_project(rendered, tmp_path, "defaults")
    commands = documented_commands("how-to/own-data.md")
    assert commands[0] == "cp penguins.csv data/" and commands[2:] == ["make run", "make test"]
    public_tables.penguins(project.folder / "penguins.csv")
    started = time.monotonic()
    bash(project, commands[0])
    drafted = bash(project, commands[1])
    assert "target species: classes Adelie, Chinstrap, Gentoo" in drafted, drafted
    contract = (project.folder / "src/customer_churn/contract.py").read_text()
    assert contract.count("TODO: describe ") == 8 and "nullable=False" in contract
    server = subprocess.Popen(
        ["bash", "-c", commands[2]], cwd=project.folder, env=project.env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port = project.env["CUSTOMER_CHURN_PORT"]
        wait_until_answers(f"http://127.0.0.1:{port}/ready", server, 900)
        answer = predict_served(project, [PENGUIN])["predictions"][0]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    print(f"penguins: contract init to a served prediction in {time.monotonic() - started:.1f} s")
    assert answer["prediction"] == "Gentoo", answer
    assert set(answer["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert answer["probability"] == max(answer["probabilities"].values())
    metrics = json.loads((project.work / "reports/metrics.json").read_text())
    print(f"penguins metrics: {metrics}")
    assert metrics["test_f1_macro"] > 0.9 and metrics["test_roc_auc"] > 0.95
    # The page's `make test`, its load tests left out: they time the service under load,
    # which the tests beside this one would disturb; test_fresh_machine.py runs them alone.
    project.env["PYTEST_ADDOPTS"] = "-m 'not load'"
    output = bash(project, commands[3])
    assert " passed" in output and " failed" not in output


def test_penguins_on_xgboost_serve_text_classes_from_the_graph(rendered, tmp_path):
    project = own_project(rendered, tmp_path, "classification-xgboost")
    public_tables.penguins(project.folder / "data/penguins.csv")
    drafted = project.cli("contract", "init", "data/penguins.csv", "--target", "species")
    assert "target species: classes Adelie, Chinstrap, Gentoo" in drafted, drafted
    trained = project.cli("train")
    manifest = json.loads((project.work / "models/model/serving.json").read_text())
    print(f"penguins on XGBoost: ONNX {manifest['onnx']}")
    assert manifest["onnx"] and manifest["onnx"]["label_agreement"] == 1.0, trained
    assert manifest["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    metrics = json.loads((project.work / "reports/metrics.json").read_text())
    assert metrics["test_f1_macro"] > 0.9, metrics
    project.env["PYTEST_ADDOPTS"] = "-m 'not load'"  # as the tests beside it: see above
    output = bash(project, "uv run --frozen pytest")
    assert " passed" in output and " failed" not in output


def test_cars_are_refused_then_drafted_and_pass_the_project_tests(rendered, tmp_path):
    project = own_project(rendered, tmp_path, "regression-lightgbm")
    public_tables.cars(project.folder / "data/cars.csv")
    init = f".venv/bin/{project.package} contract init data/cars.csv --target Miles_per_Gallon"
    refused = bash(project, init, expect=2)
    assert re.search(r"'Name'.*free text", refused) and re.search(r"'Year'.*date", refused)
    assert "--drop" in refused
    drafted = bash(project, f"{init} --drop Name --drop Year")
    assert "8 rows have no target" in drafted, drafted
    # The load tests left out: they time the service under load, which the tests beside this
    # one would disturb (test_run.py runs them alone).
    output = bash(project, "uv run --frozen pytest -m 'not load'")
    assert " passed" in output and " failed" not in output


def test_biopsy_replaces_the_example_and_promotion_says_the_contract_changed(rendered, tmp_path):
    project = own_project(rendered, tmp_path, "classification-linear")
    project.cli("train")
    assert "version 1 promoted" in project.cli("promote")
    public_tables.biopsy(project.folder / "data/biopsy.csv")
    started = time.monotonic()
    drafted = project.cli(
        "contract", "init", "data/biopsy.csv", "--target", "class", "--drop", "ID"
    )
    assert "classes benign, malignant" in drafted, drafted
    assert "registered" in project.cli("train")
    promoted = project.cli("promote")
    assert "version 2 promoted" in promoted, promoted
    assert "version 1, was trained on another feature contract" in promoted, promoted
    server = project.serve(int(project.env[f"{project.package.upper()}_PORT"]))
    try:
        port = project.env[f"{project.package.upper()}_PORT"]
        wait_until_answers(f"http://127.0.0.1:{port}/ready", server, 300)
        answer = predict_served(project, [dict.fromkeys([f"V{i}" for i in range(1, 10)], 8)])
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"biopsy: contract init to a served prediction in {time.monotonic() - started:.1f} s")
    first = answer["predictions"][0]
    assert first["prediction"] == "malignant" and first["probability"] > 0.9, answer
    assert first["probability"] == first["probabilities"]["malignant"]
