"""Spark batch scoring: the rendering with `spark` installs (its `spark` group included) and
passes its own Spark tests in local mode, and only those: the run tier covers the rest."""

import re
import shutil

import pytest

from harness import apt_install, loud, project_env, python_for, run_checked, tool

pytestmark = pytest.mark.slow
NAME = "spark"


@pytest.fixture(scope="module")
def java() -> str:
    """The `java` command Spark starts; Debian's Java 17 is installed when there is none."""
    if shutil.which("java") is None:
        problem = apt_install("openjdk-17-jre-headless")
        if problem:
            loud(f"CANNOT INSTALL JAVA 17 FOR SPARK: {problem}")
    found = shutil.which("java")
    if found is None:
        pytest.skip("NO JAVA ON THIS MACHINE: the Spark tests of the rendering cannot run")
    return found


def test_the_spark_rendering_passes_its_spark_tests(java, workspace, answers_of):
    project, answers = workspace(NAME), answers_of(NAME)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} ON THIS MACHINE: cannot install {NAME}")
    env = project_env(answers["python_version"])
    run_checked(["make", "install"], project, env)
    output = run_checked([tool("uv"), "run", "--frozen", "pytest", "-m", "spark"], project, env)
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 4, output[-3000:]
    assert " failed" not in output and " skipped" not in output, output[-3000:]
