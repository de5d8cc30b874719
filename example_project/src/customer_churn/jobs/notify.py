"""Notifications: a training that failed, or a version the promotion gate refused, said in one
message posted to a webhook as Slack-compatible JSON (`{"text": ...}`; Mattermost, Rocket.Chat
and Teams' incoming webhooks take it too); and the HTTP POST that sends it.

The POST is the standard library's: one small request per failed run needs no HTTP client of
its own, and the serving image (which runs the retraining relay, a user of `post`) has none.
A notification that cannot be delivered is a warning for the caller to print, never an error:
it must not change a command's outcome or hide its error.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from ..settings import Settings

PROJECT = "Customer Churn"
TIMEOUT = 10.0  # seconds a webhook gets to answer


class DeliveryError(Exception):
    """A POST that did not reach its server, or that its server refused. The message says
    which, after the server's name, without the URL (a webhook's URL is its secret)."""


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> bytes:
    """POST `body` to the http(s) `url`; the answer's body, or DeliveryError."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DeliveryError(f"is not an http(s) URL (its scheme is '{scheme}')")
    request = urllib.request.Request(url, body, headers, method="POST")  # noqa: S310 (checked)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.read()
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"answered HTTP {error.code}: {_said(error)}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise DeliveryError(f"could not be reached ({reason})") from None


def _said(error: urllib.error.HTTPError) -> str:
    """What a refusing server said: the `message` of a JSON answer (GitHub's and GitLab's
    APIs), else the first line of its text, else the status's reason."""
    try:
        text = error.read(2000).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("message"):
        text = str(answer["message"])
    first_line = text.splitlines()[0][:200] if text else ""
    return first_line or str(error.reason)


def ci_job_url() -> str | None:
    """The page of the CI job this process runs in (GitHub Actions, GitLab CI), if any."""
    if os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return (
            f"{server}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        )
    return os.environ.get("CI_JOB_URL") or None


def message(command: str, what: str, run_id: str | None = None) -> str:
    """The notification's text: the project, the command, what happened, where to look."""
    where = [f"MLflow run {run_id}"] if run_id else []
    if job := ci_job_url():
        where.append(f"CI job {job}")
    return f"{PROJECT}: `{command}` {what}" + (f" ({'; '.join(where)})" if where else "")


def notify(settings: Settings, command: str, what: str, run_id: str | None = None) -> str | None:
    """Post the message when `notify_webhook_url` is set. None when it was delivered (or no
    webhook is set), else a warning naming the webhook's host and what went wrong."""
    if settings.notify_webhook_url is None:
        return None
    url = settings.notify_webhook_url.get_secret_value()
    body = json.dumps({"text": message(command, what, run_id)}).encode()
    try:
        post(url, body, {"content-type": "application/json"}, TIMEOUT)
    except DeliveryError as error:
        host = urllib.parse.urlsplit(url).hostname or "the webhook"
        return f"the notification was not delivered: {host} {error}"
    return None


def run_started_since(started: float) -> str | None:
    """The MLflow run this process started at or after `started` (Unix time), if any: the run
    of a training that failed half-way. Looked up only when MLflow was imported."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return None
    try:
        run = mlflow.last_active_run()
    except Exception:  # a store that is away: the notification goes without the run id
        return None
    if run is None or run.info.start_time < int(started * 1000):
        return None
    return run.info.run_id
