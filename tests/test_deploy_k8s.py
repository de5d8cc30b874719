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


def assert_tuning_job(built: list[dict], answers: dict) -> None:
    """deploy/k8s/tune: parallel `tune` workers of the trainer image on one study, the storage
    URL from a secret, hardened like the service, reaching only DNS, PostgreSQL and MLflow."""
    resources = {document["kind"]: document for document in built}
    assert set(resources) == {"Job", "NetworkPolicy"}
    slug, prefix = slug_of(answers), answers["package_name"].upper()
    job = resources["Job"]
    assert job["metadata"]["namespace"] == f"{slug}-tuning"
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["parallelism"] == spec["completions"] > 1 and spec["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"].startswith(f"ghcr.io/your-org/{slug}-trainer:")
    command = container["command"]
    assert command[:2] == [answers["package_name"], "tune"] and "--study" in command
    assert "--storage" not in command, "the URL holds a password: it comes from the secret"
    env = {variable["name"]: variable for variable in container["env"]}
    assert env[f"{prefix}_TUNE_STORAGE"]["valueFrom"]["secretKeyRef"]["name"] == f"{slug}-tune"
    assert env["MLFLOW_TRACKING_URI"]["value"].startswith("http")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    policy = resources["NetworkPolicy"]["spec"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"] == [] and policy["policyTypes"] == ["Ingress", "Egress"]
    ports = [port["port"] for rule in policy["egress"] for port in rule["ports"]]
    assert sorted(ports) == [53, 53, 5000, 5432]


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

    overlays = built_overlays(project)
    assert_tuning_job(documents(overlays.pop("tune")), answers)
    for overlay, manifest in overlays.items():
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
