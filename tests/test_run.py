"""Tier 3: a rendering installs in a fresh environment and its own checks and tests pass."""

import subprocess

import pytest

from answer_sets import RUN_SETS
from harness import project_env, python_for, tool

pytestmark = pytest.mark.slow


def _run(command: list[str], project, env, timeout=1500) -> str:
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output


@pytest.mark.parametrize("name", RUN_SETS)
def test_rendered_project_passes_its_own_tests(name, workspace, answers_of):
    project, answers = workspace(name), answers_of(name)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} ON THIS MACHINE: cannot install {name}")
    env = project_env(answers["python_version"])
    output = _run(["make", "test"], project, env)  # the rendered README's test command
    assert " passed" in output and " failed" not in output
    _run(["make", "lint"], project, env)


def test_pre_commit_hooks_pass_on_the_rendering(workspace, answers_of):
    project, answers = workspace("defaults"), answers_of("defaults")
    env = project_env(answers["python_version"])
    _run(["git", "init", "-q"], project, env)
    # What the pipeline writes stays out of version control.
    outputs = ["mlflow.db", "mlartifacts/1/x", "models/model/MLmodel", "reports/metrics.json"]
    outputs += [".venv/bin/python", ".env"]
    ignored = _run(["git", "check-ignore", *outputs], project, env).split()
    assert sorted(ignored) == sorted(outputs)
    _run(["git", "add", "-A"], project, env)
    _run([tool("uvx"), "pre-commit", "run", "--all-files"], project, env, timeout=900)
