"""What the retraining relay sends the CI: the request that starts the training workflow, and
the drift report it carries.

GitHub: workflow_dispatch of train.yml (POST /repos/OWNER/REPO/actions/workflows/train.yml/
dispatches, a bearer token) with the inputs `reason` and `drift_report`. GitLab: the pipeline
trigger (POST /api/v4/projects/:id/trigger/pipeline with the trigger token) with the variables
RETRAIN_REASON and RETRAIN_DRIFT_REPORT. The report holds the alerts (labels, annotations,
since when) and the drift job's latest verdict (`drift.json` in the monitoring folder),
trimmed step by step when it would pass GitHub's limit on inputs (65,535 characters).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import ProjectError
from ..settings import ENV_PREFIX, Settings

WORKFLOW = "train.yml"  # the GitHub workflow dispatched
INPUTS = ("reason", "drift_report")  # its workflow_dispatch inputs
VARIABLES = ("RETRAIN_REASON", "RETRAIN_DRIFT_REPORT")  # the GitLab pipeline's variables
INPUTS_LIMIT = 65_535  # characters GitHub takes in a dispatch's inputs
PUBLIC_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com"}
# OWNER/REPO on GitHub; a project's id, or its path (group/subgroup/project), on GitLab
REPOSITORY = {
    "github": re.compile(r"^[\w.-]+/[\w.-]+$"),
    "gitlab": re.compile(r"^(\d+|[\w.-]+(/[\w.-]+)+)$"),
}


class Alert(BaseModel):
    """One alert of Alertmanager's webhook body."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: str = Field("", alias="startsAt")
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed alert")

    @property
    def key(self) -> tuple[str, str]:
        """The alert and since when it fires: Alertmanager's repeats share it."""
        return self.fingerprint or json.dumps(self.labels, sort_keys=True), self.starts_at


@dataclass(frozen=True)
class Target:
    """Where training starts: the CI's API, the repository or project, the branch, the token."""

    ci: str
    api_url: str
    repository: str
    ref: str
    token: str = field(repr=False)  # a secret: kept out of reprs and logs
    timeout: float = 10.0

    @property
    def name(self) -> str:
        return f"the {'GitHub' if self.ci == 'github' else 'GitLab'} API at {self.api_url}"

    def request(self, reason: str, report: str) -> tuple[str, bytes, dict[str, str]]:
        """The URL, body and headers of the request that starts the training workflow."""
        values = dict(zip(INPUTS, (reason, report), strict=True))
        if self.ci == "github":
            path = f"/repos/{self.repository}/actions/workflows/{WORKFLOW}/dispatches"
            headers = {
                "accept": "application/vnd.github+json",
                "authorization": f"Bearer {self.token}",
                "x-github-api-version": "2022-11-28",
                "content-type": "application/json",
                "user-agent": "retrain-relay",
            }
            body = json.dumps({"ref": self.ref, "inputs": values}).encode()
            return self.api_url + path, body, headers
        project = urllib.parse.quote(self.repository, safe="")
        fields = {"token": self.token, "ref": self.ref}
        fields |= {f"variables[{v}]": values[i] for i, v in zip(INPUTS, VARIABLES, strict=True)}
        url = f"{self.api_url}/api/v4/projects/{project}/trigger/pipeline"
        form = {"content-type": "application/x-www-form-urlencoded"}
        return url, urllib.parse.urlencode(fields).encode(), form


def target_from(settings: Settings) -> Target:
    """The CI to start training in, from the settings; ProjectError naming what is missing."""
    ci, repository = settings.retrain_ci, settings.retrain_repository.strip()
    what = "OWNER/REPO" if ci == "github" else "the project's id or path (group/project)"
    if not REPOSITORY[ci].match(repository):
        raise ProjectError(
            f"the retraining relay needs {ENV_PREFIX}RETRAIN_REPOSITORY: {what} of the "
            f"{ci} repository whose training workflow it starts (got '{repository}')"
        )
    if settings.retrain_token is None:
        kind = "allowed to write Actions" if ci == "github" else "that triggers pipelines"
        raise ProjectError(f"the retraining relay needs {ENV_PREFIX}RETRAIN_TOKEN: a token {kind}")
    api_url = (settings.retrain_api_url.strip() or PUBLIC_API[ci]).rstrip("/")
    if urllib.parse.urlsplit(api_url).scheme not in ("http", "https"):
        raise ProjectError(f"{ENV_PREFIX}RETRAIN_API_URL must be an http(s) URL (got '{api_url}')")
    token = settings.retrain_token.get_secret_value()
    return Target(ci, api_url, repository, settings.retrain_ref, token, settings.retrain_timeout)


def reason_of(alerts: list[Alert]) -> str:
    """One line: each alert, its summary and since when it fires."""
    said = [
        f"{alert.name}: {alert.annotations.get('summary', 'firing')} (since {alert.starts_at})"
        for alert in alerts
    ]
    return "; ".join(said)[:1000]


def drift_report(alerts: list[Alert], monitoring_dir: Path) -> dict[str, Any]:
    """The alerts and the drift job's latest verdict (or why there is none)."""
    report: dict[str, Any] = {
        "alerts": [alert.model_dump(by_alias=True, exclude={"fingerprint"}) for alert in alerts]
    }
    path = monitoring_dir / "drift.json"
    try:
        report["drift"] = json.loads(path.read_text())
    except FileNotFoundError:
        report |= {"drift": None, "drift_missing": f"no {path}: the drift job wrote no verdict"}
    except (OSError, ValueError) as error:
        report |= {"drift": None, "drift_missing": f"{path} is unreadable: {error}"}
    return report


def _drifted_only(report: dict[str, Any]) -> dict[str, Any]:
    drift = dict(report["drift"] or {})
    features = drift.get("features") or {}
    drift["features"] = {name: v for name, v in features.items() if v.get("drifted")}
    drift.pop("rollout", None)
    return report | {"drift": drift, "trimmed": "the features that did not drift, the rollout"}


def _verdict_only(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("time", "model", "window", "share_drifted", "dataset_drift", "breaches", "healthy")
    drift = {key: (report["drift"] or {}).get(key) for key in keep}
    alerts = [{"labels": a["labels"], "startsAt": a["startsAt"]} for a in report["alerts"][:20]]
    return {"alerts": alerts, "drift": drift, "trimmed": "all but the verdict and the alerts"}


def fitted(reason: str, report: dict[str, Any]) -> str:
    """The report as JSON, trimmed step by step until the inputs fit GitHub's limit."""
    for trim in (dict, _drifted_only, _verdict_only):
        text = json.dumps(trim(report), separators=(",", ":"), default=str)
        if len(json.dumps(dict(zip(INPUTS, (reason, text), strict=True)))) <= INPUTS_LIMIT:
            return text
    names = sorted({alert["labels"].get("alertname", "") for alert in report["alerts"]})
    return json.dumps({"alerts": names[:50], "trimmed": "all but the alerts' names"})
