"""Tier 2, the security scan: checkov, with the rendered .checkov.yaml (offline: nothing is
downloaded or uploaded), finds no failing check in the Dockerfiles, the Kubernetes overlays as
kustomize builds them (what is deployed: a patch alone is no resource) and the CI files of
every answer set, and each check it skips says why, beside what it skips.

The default rendering is scanned by its own `make scan`, the step its CI runs; meanwhile one
checkov run, the Makefile's command with the same settings, covers the files of every other
answer set (checkov's start-up costs more than its work).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from answer_sets import ANSWER_SETS
from deployment import deploy_answer
from harness import project_env, tool

pytestmark = pytest.mark.tools

OUTCOMES = ("passed", "failed", "skipped")
OVERLAYS = ("staging", "production", "tune")  # tune: the tuning workers' Job


def checkov_command(project: Path) -> list[str]:
    """The rendered Makefile's checkov (`CHECKOV := $(UV) tool run ...`), run with our uv."""
    line = re.search(r"^CHECKOV := \$\(UV\) (.+)$", (project / "Makefile").read_text(), re.M)
    assert line, "the rendered Makefile names no CHECKOV"
    return [tool("uv"), *shlex.split(line.group(1))]


def scanned_files(project: Path) -> list[Path]:
    """What `make scan` gives checkov besides the built overlays (its SCANNED)."""
    patterns = ["Dockerfile", "deploy/*/Dockerfile", ".github/workflows/*.yml", ".gitlab-ci.yml"]
    return sorted(path for pattern in patterns for path in project.glob(pattern))


def expected_frameworks(name: str) -> set[str]:
    frameworks = {"dockerfile"} if deploy_answer(name, "docker") else set()
    frameworks |= {"kubernetes"} if deploy_answer(name, "kubernetes") else set()
    ci = {"github": {"github_actions"}, "gitlab": {"gitlab_ci"}, "none": set()}
    return frameworks | ci[deploy_answer(name, "ci_provider")]


def offline_env() -> dict[str, str]:
    """No platform key or checkov setting from the caller's environment changes the scan."""
    prefixes = ("BC_", "PRISMA_", "CKV_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def reports_of(process: subprocess.Popen, what: str) -> tuple[list[dict], str]:
    """checkov's JSON reports (one per framework) and the process's stderr. checkov exits 1
    when a check fails (make then exits 2): the checks are asserted on, not the exit code."""
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode in (0, 1, 2) and stdout.strip(), (
        f"{what} exited {process.returncode}:\n{stdout[-3000:]}\n{stderr[-6000:]}"
    )
    reports = json.loads(stdout)
    return (reports if isinstance(reports, list) else [reports]), stderr


class Tally:
    """Checks by answer set, framework and outcome; the failed and the unexplained skips."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {name: Counter() for name in sorted(ANSWER_SETS)}
        self.failures: list[str] = []
        self.unexplained: list[str] = []
        self.files: dict[str, set[Path]] = {name: set() for name in self.counts}

    def add(self, reports: list[dict], owner: Callable[[Path], str]) -> None:
        for report in reports:
            for outcome in OUTCOMES:
                for check in report["results"][f"{outcome}_checks"]:
                    path = Path(check["file_abs_path"])
                    name = owner(path)
                    self.files[name].add(path)
                    self.counts[name][(report["check_type"], outcome)] += 1
                    where = f"{name}: {check['check_id']} {check['resource']} ({path})"
                    if outcome == "failed":
                        self.failures.append(where)
                    if outcome == "skipped" and not check["check_result"].get("suppress_comment"):
                        self.unexplained.append(where)

    def print(self) -> None:
        total: Counter = Counter()
        for name, count in self.counts.items():
            total += count
            print(f"checkov, {name}: {shown(count)}")
        print(f"checkov, every answer set: {shown(total)}")


def shown(count: Counter) -> str:
    frameworks = sorted({framework for framework, _ in count})
    return "; ".join(
        f"{fw} " + "/".join(f"{count[(fw, outcome)]} {outcome}" for outcome in OUTCOMES)
        for fw in frameworks
    )


def test_checkov_finds_nothing_in_any_rendering(rendered, answers_of, kustomize, built_overlays):
    if kustomize is None:
        pytest.skip("no kustomize to build the Kubernetes overlays with (see the warning)")
    names = sorted(ANSWER_SETS)
    default = rendered("defaults")
    configs = {(rendered(name) / ".checkov.yaml").read_text() for name in names}
    assert len(configs) == 1, "every rendering scans with the same settings"
    assert "skip-download: true" in configs.pop()

    env = {**offline_env(), **project_env(answers_of("defaults")["python_version"])}
    made = subprocess.Popen(
        ["make", "--no-print-directory", "scan", "SCAN_FLAGS=--output json"],
        cwd=default, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    owner: dict[Path, str] = {}  # every file of the other renderings -> its answer set
    for name in names:
        if name != "defaults":
            owner |= {path: name for path in scanned_files(rendered(name))}
        if name != "defaults" and deploy_answer(name, "kubernetes"):
            built = built_overlays(rendered(name))
            owner |= {built[overlay]: name for overlay in OVERLAYS}
    command = [*checkov_command(default), "--config-file", default / ".checkov.yaml"]
    command += ["--output", "json", "--file", *owner]
    joint = subprocess.Popen(
        [str(part) for part in command],
        env=offline_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    tally = Tally()
    tally.add(reports_of(joint, "checkov")[0], owner.__getitem__)
    reports, stderr = reports_of(made, "make scan")
    tally.add(reports, lambda path: "defaults")
    tally.print()
    for name in names:
        assert {framework for framework, _ in tally.counts[name]} == expected_frameworks(name)
    assert not tally.failures, "checkov found:\n" + "\n".join(tally.failures)
    assert not tally.unexplained, "skipped without a reason:\n" + "\n".join(tally.unexplained)
    # `make scan` gave checkov every file of its rendering, and each overlay as built.
    files = tally.files["defaults"]
    assert {path for path in files if path.is_relative_to(default)} == set(scanned_files(default))
    built = sorted(path.name for path in files if not path.is_relative_to(default))
    assert built == [f"overlay-{overlay}.yaml" for overlay in sorted(OVERLAYS)], stderr
