"""As a user would: train on the bundled data, promote, serve the champion, ask for predictions."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from customer_churn.service.app import Record
from customer_churn.settings import ENV_PREFIX, Settings
from tests.conftest import example_fits_the_contract
from tests.recorder import free_port

PROJECT = Path(__file__).parent.parent


def _post(url: str, payload) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A copy of the project's data in a fresh working folder: runs and models land here."""
    folder = tmp_path_factory.mktemp("e2e")
    shutil.copytree(PROJECT / "data", folder / "data")
    return folder


def _cli(workdir: Path, *args: str, **kwargs):
    # Only defaults: no setting (nor MLflow's URI, which the other tests export) leaks in.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CUSTOMER_CHURN_", "MLFLOW_"))
    }
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    # The project's own data file, as its .env names it (`contract init` sets it there).
    env[f"{ENV_PREFIX}DATA_PATH"] = str(Settings().data_path)
    command = [sys.executable, "-m", "customer_churn", *args]
    return subprocess.Popen(command, cwd=workdir, env=env, text=True, **kwargs)


def test_train_then_serve(workdir):
    training = _cli(workdir, "train", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = training.communicate(timeout=600)
    assert training.returncode == 0, output
    assert "registered 'customer-churn' version 1" in output
    assert (workdir / "mlflow.db").is_file() and (
        workdir / "models" / "model" / "serving.json"
    ).is_file()

    promotion = _cli(workdir, "promote", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = promotion.communicate(timeout=600)
    assert promotion.returncode == 0, output
    assert "version 1 promoted to champion" in output

    port = free_port()
    server = _cli(
        workdir, "serve", "--port", str(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the service did not start:\n{server.stdout.read()}"
                    ) from None
                time.sleep(0.3)

        example = Record.model_config["json_schema_extra"]["examples"][0]
        status, body = _post(f"{base}/predict", example)
        assert status == 200, body
        assert body["model_version"] == "1" and len(body["predictions"]) == 1

        if example_fits_the_contract():  # the README's request is one of the example's rows
            readme = (PROJECT / "README.md").read_text()
            documented = json.loads(re.search(r"-d '(\{.*\})'", readme).group(1))
            status, body = _post(f"{base}/predict", documented)
            assert status == 200, f"the README's example request fails: {body}"

        field = next(iter(example))
        status, body = _post(f"{base}/predict", example | {field: "?"})
        assert status == 422
        assert field in {str(error["loc"][-1]) for error in body["detail"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
