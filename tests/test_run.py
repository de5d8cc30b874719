"""Tier 3: a rendering installs in a fresh environment and its own checks and tests pass."""

import pytest

from answer_sets import RUN_SETS
from harness import project_env, python_for, run_checked, tool

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", RUN_SETS)
def test_rendered_project_passes_its_own_tests(name, workspace, answers_of):
    project, answers = workspace(name), answers_of(name)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} ON THIS MACHINE: cannot install {name}")
    env = project_env(answers["python_version"])
    output = run_checked(["make", "test"], project, env)  # the rendered README's test command
    assert " passed" in output and " failed" not in output
    run_checked(["make", "lint"], project, env)


def test_pre_commit_hooks_pass_on_the_rendering(workspace, answers_of):
    project, answers = workspace("defaults"), answers_of("defaults")
    env = project_env(answers["python_version"])
    run_checked(["git", "init", "-q"], project, env)
    # What the pipeline writes stays out of version control.
    outputs = ["mlflow.db", "mlartifacts/1/x", "models/model/MLmodel", "reports/metrics.json"]
    outputs += [".venv/bin/python", ".env"]
    ignored = run_checked(["git", "check-ignore", *outputs], project, env).split()
    assert sorted(ignored) == sorted(outputs)
    run_checked(["git", "add", "-A"], project, env)
    run_checked([tool("uvx"), "pre-commit", "run", "--all-files"], project, env, timeout=900)
