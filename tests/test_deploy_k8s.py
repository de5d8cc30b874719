"""Tier 2, the Kubernetes manifests: the base and its staging and production overlays, built
with kustomize (kubectl's), pass `kubernetes-validate --strict` and hold a hardened
Deployment with its probes, Service, autoscaler, disruption budget, settings and
NetworkPolicy."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from deployment import KUBERNETES_SETS, documents, slug_of
from harness import tool

KUBERNETES_VERSION = "1.30.0"


def strictly_valid(output: str) -> bool:
    """kubernetes-validate only warns (and exits 0) for a kind it has no schema of: not here."""
    return "WARN" not in output and "ERROR" not in output


def assert_traffic_allowed(policy: dict, deployment: dict, settings: dict) -> None:
    """The NetworkPolicy holds the service's pods to their port coming in, and to the cluster's
    DNS and the tracking server of MLFLOW_TRACKING_URI (the model's source) going out."""
    assert policy["podSelector"] == deployment["spec"]["selector"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert all(rule["ports"] == [{"protocol": "TCP", "port": port["name"]}]
               for rule in policy["ingress"])  # fmt: skip
    tracking = urlsplit(settings["MLFLOW_TRACKING_URI"])
    service, namespace = tracking.hostname.split(".")[:2]  # SERVICE.NAMESPACE.svc...
    to_tracking = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}],
        "ports": [{"protocol": "TCP", "port": tracking.port}],
    }
    assert to_tracking in policy["egress"], (service, policy["egress"])
    assert any({"protocol": "UDP", "port": 53} in rule["ports"] for rule in policy["egress"])
    assert len(policy["egress"]) == 2, "nothing else goes out"


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
            "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy",
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
        assert_traffic_allowed(resources["NetworkPolicy"]["spec"], deployment, settings)
        if overlay != "base":
            assert deployment["metadata"]["namespace"] == f"{slug}-{overlay}"
            assert container["image"].startswith(f"ghcr.io/your-org/{slug}:")
