"""The app as assembled: what its middleware lets through, and what its start imports."""

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from customer_churn.service.app import example_record
from customer_churn.settings import ENV_PREFIX


def test_cors_is_closed_by_default(client):
    response = client.options(
        "/predict",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_the_service_and_the_pull_need_only_the_serving_dependencies(trained):
    """A process that loads a model with an ONNX graph and answers, from the command line's
    module, imports no package of the `exact` or `train` groups: the serving image does not
    hold them, and each would cost readiness. `pull`'s module imports none before MLflow's
    client (the registry image holds that alone)."""
    heavy = ["mlflow", "pandas", "pyarrow", "scipy", "skops", "sklearn"]
    script = f"""
import sys
from fastapi.testclient import TestClient
import customer_churn.cli, customer_churn.registry.tracking
from customer_churn.service.app import create_app, example_record, load
from customer_churn.settings import Settings
settings = Settings(_env_file=None, prediction_log=False, access_log=False)
model = load({str(trained.export_dir)!r}, settings)
assert model.backend == "onnx", model.reason
with TestClient(create_app(settings, model)) as client:
    assert client.post("/predict", json=example_record()).status_code == 200
print(sorted(set(sys.modules).intersection({heavy!r})))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_serve_parses_http_with_httptools():
    """uvicorn picks its C parser when it is installed (a serving dependency): it answers
    1.5 to 1.7x the requests of the pure-Python one (h11)."""
    from uvicorn.config import Config

    async def app(scope, receive, send): ...

    config = Config(app, log_config=None)  # serve leaves `http` to uvicorn's choice
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"


@pytest.mark.parametrize("event_loop", [None, "uvloop"])
def test_serve_runs_on_the_loop_asked_for_with_start_up_left_out_of_collections(
    trained, monkeypatch, event_loop
):
    """`serve` asks uvicorn for asyncio unless the settings say uvloop, even where uvloop is
    installed (libuv accepts one connection per pass of the loop: new connections wait under
    load), and leaves what start-up loaded out of the garbage collector's scans."""
    import gc

    import uvicorn

    from customer_churn.cli.serving import serve
    from customer_churn.service import logs

    if event_loop:
        monkeypatch.setenv(f"{ENV_PREFIX}EVENT_LOOP", event_loop)
    ran = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options, app=app))
    monkeypatch.setattr(logs, "configure_logging", lambda _: None)
    threshold = gc.get_threshold()
    try:
        serve(host=None, port=None, model_uri=str(trained.export_dir))
        assert ran["loop"] == (event_loop or "asyncio") and ran["access_log"] is False
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_serve_on_uvloop_without_it_installed_says_so(trained, monkeypatch, capsys):
    import importlib.util

    import uvicorn

    from customer_churn.cli import main

    monkeypatch.setenv(f"{ENV_PREFIX}EVENT_LOOP", "uvloop")
    command = ["serve", "--model-uri", str(trained.export_dir)]
    monkeypatch.setattr(sys, "argv", ["customer_churn", *command])
    find_spec = importlib.util.find_spec
    hidden = lambda name, *rest: None if name == "uvloop" else find_spec(name, *rest)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", hidden)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the service started"))
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert f"{ENV_PREFIX}EVENT_LOOP is uvloop, but uvloop is not installed" in message


def test_the_service_answers_on_uvloop_and_logs_what_it_answered(trained, tmp_path):
    """The whole service on uvloop, in its own process: the prediction log's encoder and the
    load shedder's heartbeat run on that loop's clock."""
    from customer_churn.service.prediction_log import read_log
    from tests.load.loadtest import Service

    service = Service(str(trained.export_dir), tmp_path, event_loop="uvloop")
    with service:
        body = json.dumps(example_record()).encode()
        headers = {"content-type": "application/json", "x-request-id": "on-uvloop"}
        url = f"http://127.0.0.1:{service.port}/predict"
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10) as r:
            answer = json.loads(r.read())
    assert answer["request_id"] == "on-uvloop" and len(answer["predictions"]) == 1
    assert service.process.returncode in (0, -signal.SIGTERM)
    logged, unreadable = read_log(tmp_path / "predictions")
    assert unreadable == 0 and [r["request_id"] for r in logged] == ["on-uvloop"]
