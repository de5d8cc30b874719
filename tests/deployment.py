"""What the deployment tests share: which answer sets render which deployment files, where the
installed tools are cached, and how a validator's command is run."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import yaml

from answer_sets import ANSWER_SETS
from harness import tool

CACHE = Path(tempfile.gettempdir()) / "copier-mlops-cache"
DEPLOY_DEFAULTS = {
    "serving": True,
    "monitoring": True,
    "docker": True,
    "kubernetes": True,
    "ci_provider": "github",
}


def deploy_answer(name: str, key: str):
    """The value a deployment question takes in an answer set (kubernetes needs docker)."""
    answers = {**DEPLOY_DEFAULTS, **ANSWER_SETS[name]}
    if key == "kubernetes":
        return answers["docker"] and answers["kubernetes"]
    return answers[key]


def sets_where(key: str, value) -> list[str]:
    return [name for name in sorted(ANSWER_SETS) if deploy_answer(name, key) == value]


DOCKER_SETS = sets_where("docker", True)
MONITORING_SETS = sets_where("monitoring", True)
KUBERNETES_SETS = sets_where("kubernetes", True)
GITHUB_SETS = sets_where("ci_provider", "github")
GITLAB_SETS = sets_where("ci_provider", "gitlab")


def slug_of(answers: dict) -> str:
    return answers["package_name"].replace("_", "-")


def run(command: list, cwd: Path | None = None, timeout: float = 120, **kwargs) -> str:
    """Run a command; fail the test with its output unless it exits 0."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}:\n{output[-6000:]}"
    )
    return output


def attempt(command: list, accept=None) -> tuple[bool, str]:
    """(passed, transcript) of a validator run; `accept(output)` can fail a zero exit."""
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    passed = result.returncode == 0 and (accept is None or accept(output))
    return passed, f"$ {' '.join(map(str, command))}  (exit {result.returncode})\n{output}"


def schema(name: str) -> list[str]:
    return [tool("check-jsonschema"), "--builtin-schema", name]


def documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(arguments.split())))
    return pairs
