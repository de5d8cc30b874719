"""Every command the quickstart and the course guide show is run by a test: the quickstart's
`make demo` and `copier copy`, and the course guide lesson by lesson, each printing what the
page shows."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from docs_site import DOCS, course_steps, documented_commands, stable_lines
from harness import (
    ROOT,
    project_env,
    read_answers,
    tool,
    wait_until_answers,
    working_tree_repository,
)

# Where each quickstart command is run. An entry is `FILE` (the file runs it) or
# `FILE::FUNCTION` (that function runs it); the command must appear in its source.
QUICKSTART_RUNS = {
    "make demo": ["tests/test_fresh_machine.py::demo"],
    # the template's suite is CI's command; the rendered project's runs on the fresh machine
    "make test": [
        ".ci/run",
        "tests/test_fresh_machine.py::test_the_demo_project_passes_its_own_tests",
    ],
    "uvx copier copy path/or/url/of/copier-mlops my-project": [
        "tests/test_docs_commands.py::test_quickstart_copy_renders_a_project"
    ],
    # harness.demo runs the targets of the rendering's `make run` one at a time, to time them;
    # tests/test_fresh_machine.py runs it
    "make run": ["tests/harness.py::demo"],
}


def _source_of(place: str) -> str:
    path, _, function = place.partition("::")
    text = (ROOT / path).read_text()
    if not function:
        return text
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return ast.get_source_segment(text, node)
    raise AssertionError(f"{place}: no such function")


def _mentions(source: str, command: str) -> bool:
    words = command.split()
    as_list = "[" + ", ".join(f'"{word}"' for word in words)
    return command in source or as_list in source


def test_every_quickstart_command_is_run_by_a_test():
    commands = documented_commands("quickstart.md")
    assert set(commands) == set(QUICKSTART_RUNS), "map each quickstart command to its test"
    for command, places in QUICKSTART_RUNS.items():
        for place in places:
            assert _mentions(_source_of(place), command), f"{place} does not run `{command}`"


def test_ci_runs_make_test():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert lines[-1] == "make test"


@pytest.mark.slow
def test_quickstart_copy_renders_a_project(tmp_path):
    documented = "uvx copier copy path/or/url/of/copier-mlops my-project"
    assert documented in documented_commands("quickstart.md")
    # Non-interactive here: the documented command, with the defaults accepted and the
    # working tree of this repository as the template.
    command = documented.replace("path/or/url/of/copier-mlops", str(ROOT)).split()
    command[0] = tool("uvx")
    result = subprocess.run(
        [*command, "--defaults", "--vcs-ref", "HEAD"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    project = tmp_path / "my-project"
    assert read_answers(project)["package_name"] == "customer_churn"
    assert "make run" in (project / "README.md").read_text()


# The course guide is run as a student would run it: every bash block in order, in one
# scratch folder beside a link to this repository, each `text` block that follows a bash
# block checked against what the commands printed.
COURSE_PORT = 8000
PRESET = re.compile(r"presets/(lesson-[\w-]+\.yml)")


def test_course_guide_lessons_follow_the_presets():
    text = (DOCS / "course.md").read_text()
    lessons = re.findall(r"^## Lesson (\d): ", text, re.MULTILINE)
    presets = sorted(set(PRESET.findall(text)))
    assert lessons == ["1", "2", "3", "4", "5"]
    assert [p.split("-")[1] for p in presets] == lessons, presets
    assert all(commands for commands, _ in course_steps())


@pytest.mark.slow
@pytest.mark.xdist_group("port-8000")  # with the image test, which serves on it too
def test_course_guide_commands_run_and_print_what_it_shows(tmp_path):
    missing = [p for p in PRESET.findall((DOCS / "course.md").read_text())
               if not (ROOT / "presets" / p).exists()]  # fmt: skip
    if missing:
        pytest.skip(f"COURSE PRESETS NOT IN THE REPOSITORY: {sorted(set(missing))}")
    # The guide's service, simulator and curl all use :8000; a test beside this one may hold
    # it for a moment.
    deadline = time.monotonic() + 120
    while _port_taken(COURSE_PORT):
        if time.monotonic() > deadline:
            pytest.skip(f"PORT {COURSE_PORT} IS TAKEN: the course guide's commands need it")
        time.sleep(1)
    clone = working_tree_repository(tmp_path / "clone", ("copier.yml", "template", "presets"))
    run_course(tmp_path, clone)


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_course(scratch: Path, template: Path) -> None:
    """Run the course guide's commands against `template` (a clean clone, as a teacher has)."""
    (scratch / "copier-mlops").symlink_to(template)
    env = project_env("3.12")
    cwd, server = scratch, None
    try:
        for commands, expected in course_steps():
            output = ""
            for command in commands:
                if command.startswith("cd "):
                    cwd = (cwd / command[3:]).resolve()
                    continue
                if command.startswith("uvx copier update") and server:
                    server = _stop(server)
                if command.endswith(" serve"):
                    server = subprocess.Popen(
                        ["bash", "-c", command], cwd=cwd, env=env, start_new_session=True,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    wait_until_answers(f"http://127.0.0.1:{COURSE_PORT}/ready", server, 300)
                    continue
                result = subprocess.run(
                    ["bash", "-c", command], cwd=cwd, env=env,
                    capture_output=True, text=True, timeout=1500,
                )  # fmt: skip
                output += f"{result.stdout}\n{result.stderr}\n"  # curl ends without a newline
                assert result.returncode == 0, f"`{command}` in {cwd}:\n{output[-4000:]}"
            if expected is not None:
                unseen = stable_lines(expected) - stable_lines(output)
                assert not unseen, f"{commands} did not print {unseen}:\n{output[-4000:]}"
    finally:
        if server:
            _stop(server)


def _stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGINT)
    server.wait(timeout=60)
