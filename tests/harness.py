"""Render and run projects from this template: shared by the tests, `make demo`, `make example`.

python tests/harness.py demo      render the defaults, train, serve, print one prediction
python tests/harness.py example   regenerate example_project/ from the default answers
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The helpers live by concern in rendering.py (copier, template repositories, git), programs.py
# (outside programs, installed and run) and running.py (a rendering installed, served and
# browsed); the tests and benchmarks/ import them from here.
from programs import apt_install, chromium, loud, project_env, python_for, run_checked, tool
from rendering import (
    ANSWERS_FILE,
    CONFLICT_MARKER,
    NEW_VERSION,
    OLD_VERSION,
    PROVENANCE_KEYS,
    RELEASE_0_1_0,
    ROOT,
    TEMPLATE_PATHS,
    check_update,
    commit_all,
    copy_template_files,
    git,
    merge_leftovers,
    older_template_commit,
    project_files,
    read_answers,
    render,
    template_repository,
    template_snapshot,
    update,
    working_tree_repository,
)
from running import (
    CHROMIUM_ARGS,
    Installed,
    browse,
    free_port,
    install_rendering,
    post_json,
    readme_example,
    wait_for,
    wait_until_answers,
)

__all__ = [
    "ANSWERS_FILE",
    "CHROMIUM_ARGS",
    "CONFLICT_MARKER",
    "EXAMPLE",
    "NEW_VERSION",
    "OLD_VERSION",
    "PROVENANCE_KEYS",
    "RELEASE_0_1_0",
    "ROOT",
    "TEMPLATE_PATHS",
    "Installed",
    "apt_install",
    "chromium",
    "browse",
    "check_update",
    "commit_all",
    "copy_template_files",
    "demo",
    "free_port",
    "git",
    "install_rendering",
    "loud",
    "merge_leftovers",
    "older_template_commit",
    "post_json",
    "project_env",
    "project_files",
    "python_for",
    "read_answers",
    "readme_example",
    "regenerate_example",
    "render",
    "run_checked",
    "template_repository",
    "template_snapshot",
    "tool",
    "update",
    "wait_for",
    "wait_until_answers",
    "working_tree_repository",
]

EXAMPLE = ROOT / "example_project"


def regenerate_example() -> Path:
    """Render the default answers into example_project/, keeping its copyright year.

    Only from a committed template: a rendering of uncommitted changes would record a
    `_commit` that exists nowhere but in copier's temporary clone.
    """
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "copier.yml", "template"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if dirty:
        raise SystemExit(f"commit the template first; uncommitted changes:\n{dirty}")
    answers = {}
    if (EXAMPLE / ANSWERS_FILE).exists():
        answers["copyright_year"] = read_answers(EXAMPLE)["copyright_year"]
    with tempfile.TemporaryDirectory() as scratch:
        fresh = render(Path(scratch) / "example", answers)
        answers_path = fresh / ANSWERS_FILE
        # The rendering records this clone's path; point it at the template one level up instead.
        answers_path.write_text(
            re.sub(r"(?m)^_src_path: .*$", "_src_path: ..", answers_path.read_text())
        )
        shutil.rmtree(EXAMPLE, ignore_errors=True)
        shutil.copytree(fresh, EXAMPLE)
    return EXAMPLE


class Stages:
    """Wall time of each stage of the demo, for its summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, command: list[str], project: Path, env: dict) -> None:
        shown = " ".join([Path(command[0]).name, *command[1:]])
        print(f"==> {name}: {shown}", flush=True)
        started = time.monotonic()
        subprocess.run(command, cwd=project, env=env, check=True)
        self.seconds[name] = time.monotonic() - started


def summary(project: Path, stages: dict[str, float], answer: dict) -> None:
    """The demo's last words: where the project is, its metrics, the answer, the stage times."""
    import rich.box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=100)
    box = rich.box.SIMPLE
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    table = Table("metric", "cross-validated", "holdout", title="Metrics of the model", box=box)
    for name in sorted(key for key in metrics if key.startswith("cv_") and key.endswith("_mean")):
        metric = name.removeprefix("cv_").removesuffix("_mean")
        holdout = metrics.get(f"test_{metric}")
        shown = "" if holdout is None else f"{holdout:.4f}"
        table.add_row(metric, f"{metrics[name]:.4f}", shown)
    console.print(table)
    times = Table("stage", "seconds", title="Wall time of each stage", box=box)
    for name, seconds in stages.items():
        times.add_row(name, f"{seconds:.2f}")
    times.add_row("total", f"{sum(stages.values()):.2f}", style="bold")
    console.print(times)
    console.print(f"The answer: {json.dumps(answer['predictions'])}", soft_wrap=True)
    console.print(f"The project: {project}")


def run_recipe(project: Path) -> list[list[str]]:
    """The command-line arguments of each line of the rendered Makefile's `run` recipe, all of
    the form `$(RUN) $(PACKAGE) ARGUMENTS`."""
    makefile = (project / "Makefile").read_text()
    rule = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    if rule is None:
        raise SystemExit(f"no `run` rule with a recipe in {project / 'Makefile'}")
    lines = []
    for line in rule.group(1).splitlines():
        arguments = line.split()
        if arguments[:2] != ["$(RUN)", "$(PACKAGE)"]:
            raise SystemExit(f"`make run` has a line the demo cannot time alone: {line.strip()}")
        lines.append(arguments[2:])
    return lines


def demo(destination: Path | None = None) -> None:
    """Render the defaults, run the rendered README's `make run` (its steps one at a time,
    each timed: install, train and promote, then the service), send the README's example
    request, stop the service with SIGTERM (a graceful shutdown) and sum it up."""
    destination = destination or Path(tempfile.mkdtemp(prefix="copier-mlops-demo-")) / "project"
    stages = Stages()
    print(f"==> render: the default answers into {destination}", flush=True)
    started = time.monotonic()
    project = render(destination)
    stages.seconds["render"] = time.monotonic() - started
    answers = read_answers(project)
    port = free_port()
    env = project_env(answers["python_version"])
    env[f"{answers['package_name'].upper()}_PORT"] = str(port)
    stages.run("install", ["make", "install"], project, env)
    # `make run`'s recipe, one line at a time, to time each; its last line is the service.
    uv_run = [tool("uv"), "run", "--frozen", answers["package_name"]]
    *steps, serve = run_recipe(project)
    for arguments in steps:
        stages.run(" ".join(arguments), [*uv_run, *arguments], project, env)
    if serve != ["serve"]:
        raise SystemExit(f"`make run` ends with {serve}, not the service: the demo needs it")
    command = [*uv_run, "serve"]
    print(f"==> serve: uv {' '.join(command[1:])} on :{port}", flush=True)
    server = subprocess.Popen(command, cwd=project, env=env, start_new_session=True)
    try:
        stages.seconds["serve (until ready)"] = wait_until_answers(
            f"http://127.0.0.1:{port}/ready", server, timeout=900
        )
        payload = readme_example(project)
        print(f"==> POST /predict {json.dumps(payload)}", flush=True)
        started = time.monotonic()
        answer = post_json(f"http://127.0.0.1:{port}/predict", payload)
        stages.seconds["first prediction"] = time.monotonic() - started
        print(json.dumps(answer, indent=2), flush=True)
    finally:
        print("==> stopping the service (SIGTERM: it finishes what is in flight)", flush=True)
        os.killpg(server.pid, signal.SIGTERM)  # uv and the service share the group
        server.wait(timeout=60)
    summary(project, stages.seconds, answer)


if __name__ == "__main__":
    commands = {"demo": demo, "example": regenerate_example}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit(__doc__)
    commands[sys.argv[1]]()
