"""Tier 3 on this machine: the default rendering's load tests pass, run alone; its pre-commit
hooks pass, and what the pipeline writes stays out of version control. (Its `make test`, the
load tests left out, and `make lint` run on a fresh Debian machine: test_fresh_machine.py.)"""

import pytest

from harness import project_env, run_checked, tool

pytestmark = pytest.mark.slow


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


@pytest.mark.serial
def test_the_load_tests_pass_alone(workspace, answers_of):
    """The default rendering's load, soak and kill tests (its marker `load`), with nothing
    else running: they time the service at twice its capacity."""
    project, answers = workspace("defaults"), answers_of("defaults")
    env = project_env(answers["python_version"])
    run_checked(["make", "install"], project, env)
    output = run_checked([tool("uv"), "run", "--frozen", "pytest", "-m", "load"], project, env)
    assert " passed" in output and " failed" not in output and " deselected" in output
