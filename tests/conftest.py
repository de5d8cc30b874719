"""Template test fixtures: each answer set is rendered once per session, on first use."""

import os
import shutil
from pathlib import Path

import pytest

from answer_sets import ANSWER_SETS
from harness import apt_install, loud, read_answers, render, template_repository

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """`rendered(name)` -> the folder of that answer set's rendering (made once)."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            folder = tmp_path_factory.mktemp(name) / "project"
            cache[name] = render(folder, ANSWER_SETS[name])
        return cache[name]

    return get


@pytest.fixture(scope="session")
def workspace(rendered, tmp_path_factory):
    """`workspace(name)` -> a copy of that rendering to install, train and run in (made once).

    The renderings themselves stay as copier left them, for the render-level checks.
    """
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            folder = tmp_path_factory.mktemp(f"{name}-workspace") / "project"
            cache[name] = Path(shutil.copytree(rendered(name), folder))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def answers_of(rendered):
    return lambda name: read_answers(rendered(name))


@pytest.fixture(scope="session")
def debian_tool():
    """`debian_tool(command, package)` -> the command's path, installing the package if needed."""
    found: dict[str, str | None] = {}

    def get(command: str, package: str) -> str:
        if command not in found:
            if shutil.which(command) is None:
                problem = apt_install(package)
                if problem:
                    loud(f"CANNOT INSTALL {package} ({command}): {problem}")
            found[command] = shutil.which(command)
        if found[command] is None:
            pytest.skip(f"{command} (Debian package {package}) cannot be installed here")
        return found[command]

    return get


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory):
    """A clone of this repository tagged OLD_VERSION and NEW_VERSION (see harness.py)."""
    return template_repository(tmp_path_factory.mktemp("template") / "copier-mlops")
