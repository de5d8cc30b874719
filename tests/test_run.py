"""Tier 3: the rendered pre-commit hooks pass on the default rendering, and what the pipeline
writes stays out of version control. (Its `make test` and `make lint` run on a fresh Debian
machine: tests/test_fresh_machine.py.)"""

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
