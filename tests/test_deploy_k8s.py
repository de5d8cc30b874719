"""Tier 2, the Kubernetes manifests: the base and its staging and production overlays, built
with kustomize (kubectl's), pass `kubernetes-validate --strict` and hold a hardened
Deployment with its probes, Service, autoscaler, disruption budget and settings."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from deployment import KUBERNETES_SETS, documents, run, slug_of
from harness import loud, tool

KUBERNETES_VERSION = "1.30.0"


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
