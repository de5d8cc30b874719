"""The smoke test of a deployed service: ready, one prediction, the expected model version.

A deployment runs it against the new pods before it moves on (deploy/rollout.sh); a person
can run it against any running service. Plain HTTP from the standard library: it needs
nothing the service does not.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..errors import ProjectError
from .schemas import example_record


class SmokeTestFailed(ProjectError):
    """The service did not pass the smoke test."""


@dataclass(frozen=True)
class SmokeResult:
    ready_seconds: float
    prediction: dict[str, Any]
    version: str


def _call(url: str, body: dict | None = None, api_key: str | None = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of a GET, or of a POST of `body`; status 0 if unreachable."""
    headers = {"content-type": "application/json"} if body is not None else {}
    if api_key:
        headers["x-api-key"] = api_key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (checked)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")[:300]
        return error.code, text
    except (urllib.error.URLError, OSError, ValueError) as error:
        return 0, str(getattr(error, "reason", error))


def wait_until_ready(base: str, wait: float) -> float:
    """Seconds until GET /ready answers 200, polling for at most `wait` seconds."""
    started = time.monotonic()
    while True:
        status, body = _call(f"{base}/ready")
        if status == 200:
            return time.monotonic() - started
        if time.monotonic() - started > wait:
            raise SmokeTestFailed(f"{base}/ready did not answer 200 within {wait:g} s: {body}")
        time.sleep(0.5)


def smoke_test(
    base: str, expect_version: str | None = None, api_key: str | None = None, wait: float = 60
) -> SmokeResult:
    """Check the service at `base`: ready, one prediction answered, the model version served."""
    if not base.startswith(("http://", "https://")):
        raise SmokeTestFailed(f"the service URL must start with http:// or https:// (got {base!r})")
    base = base.rstrip("/")
    ready = wait_until_ready(base, wait)
    status, answer = _call(f"{base}/predict", example_record(), api_key)
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if status != 200 or not predictions or len(predictions) != 1:
        raise SmokeTestFailed(f"POST {base}/predict answered {status}: {answer}")
    status, model = _call(f"{base}/model")
    if status != 200 or not isinstance(model, dict):
        raise SmokeTestFailed(f"GET {base}/model answered {status}: {model}")
    version = str(model.get("version") or "unversioned")
    if expect_version is not None and version != str(expect_version):
        raise SmokeTestFailed(
            f"{base} serves model version {version}, not the expected {expect_version}"
        )
    return SmokeResult(ready, predictions[0], version)
