"""Tier 2, the container files: the Dockerfiles pass hadolint and build what serving needs;
the compose stack passes the compose spec's schema and Debian's `docker-compose config`, and
holds every service with its health check and volumes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deployment import (
    DOCKER_SETS,
    KUBERNETES_SETS,
    deploy_answer,
    dockerfile_instructions,
    schema,
    slug_of,
)
from harness import tool

STACK_PASSWORDS = ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD")


def dockerfiles(project: Path) -> list[Path]:
    trainer = project / "deploy" / "trainer" / "Dockerfile"  # with Kubernetes
    return [project / "Dockerfile", project / "deploy" / "mlflow" / "Dockerfile"] + (
        [trainer] if trainer.exists() else []
    )


def compose_file(project: Path) -> list[Path]:
    return [project / "compose.yaml"]


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
        "builder AS builder-registry",  # adds MLflow's client and the exact fallback
        f"{base} AS runtime",
        "runtime AS registry",
        "builder AS builder-baked",  # after `registry`: that target needs no trained model
        "runtime AS baked",  # the last stage is what a plain `docker build` makes
    ]
    installs = [args for keyword, args in steps if keyword == "RUN" and "uv sync" in args]
    assert len(installs) == 3, "the serving install, then the registry's and the baked additions"
    serving, registry_install, baked = (set(install.split()) for install in installs)
    # The serving install: the [project] dependencies only, no group, no dev tools.
    assert {"--frozen", "--no-editable", "--no-default-groups"} <= serving
    assert "--group" not in serving
    assert {"--no-default-groups", "exact", "registry"} <= registry_install
    assert "train" not in registry_install  # MLflow's client only, not the whole of MLflow
    # The baked image adds the exact fallback only for a model without an ONNX graph.
    assert "/tmp/model/model.onnx" in installs[2] and {"--group", "exact"} <= baked
    assert ("COPY", "--from=builder-baked /app/.venv /app/.venv") in steps
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
    assert ("!data/" in ignored) is answers["kubernetes"]  # only the trainer's build needs it
    readme = (project / "README.md").read_text()
    assert f"{package.upper()}_MODEL_URI" in readme and "MLFLOW_TRACKING_URI" in readme
    assert "--target registry" in readme


@pytest.mark.parametrize("name", KUBERNETES_SETS)
def test_the_trainer_image_runs_tune_with_the_training_install_and_the_data(
    name, rendered, answers_of
):
    """deploy/trainer/Dockerfile, the image of the tuning workers (deploy/k8s/tune)."""
    project, answers = rendered(name), answers_of(name)
    steps = dockerfile_instructions(project / "deploy" / "trainer" / "Dockerfile")
    base = f"python:{answers['python_version']}-slim"
    assert [a for k, a in steps if k == "FROM"] == [f"{base} AS builder", f"{base} AS trainer"]
    (install,) = [args for keyword, args in steps if keyword == "RUN" and "uv sync" in args]
    assert {"--frozen", "--no-editable", "--no-default-groups", "exact", "train"} <= set(
        install.split()
    )
    assert ("COPY", "data /app/data") in steps and ("USER", "10001:10001") in steps
    assert ("CMD", f'["{answers["package_name"]}", "tune"]') in steps
    assert "!data/" in (project / ".dockerignore").read_text().split("\n")
    assert (project / "deploy/k8s/tune/job.yaml").read_text().count(f"{slug_of(answers)}-trainer")


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
        if deploy_answer(name, "ci_provider") != "none":  # drift alerts -> the training workflow
            expected.add("retrain-relay")
    assert set(services) == expected
    for service_name, service in services.items():
        if service.get("restart") == "no":  # a one-off job (the bucket creation) ends
            continue
        assert service.get("healthcheck", {}).get("test"), f"{service_name} has no health check"
    volumes = [v for service in services.values() for v in service.get("volumes", [])]
    named = {volume.split(":")[0] for volume in volumes if not volume.startswith(".")}
    assert named == set(stack["volumes"]), "every named volume is declared and used"
    for stateful in expected - {"api", "mlflow", "minio-bucket", "retrain-relay"}:
        assert any(not v.startswith(".") for v in services[stateful]["volumes"]), stateful
    for bound in (volume.split(":")[0] for volume in volumes if volume.startswith(".")):
        assert (project / bound).exists(), f"compose mounts {bound}, which is not rendered"
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--artifacts-destination=s3://" in mlflow and "--serve-artifacts" in mlflow
    assert "--backend-store-uri=postgresql://" in mlflow
