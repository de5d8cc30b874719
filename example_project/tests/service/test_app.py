"""The app as assembled: what its middleware lets through, and what its start imports."""

import subprocess
import sys


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


def test_serve_runs_on_asyncio_with_start_up_left_out_of_collections(trained, monkeypatch):
    """`serve` asks uvicorn for asyncio, even where uvloop is installed (libuv accepts one
    connection per pass of the loop: new connections wait under load), and leaves what
    start-up loaded out of the garbage collector's scans."""
    import gc

    import uvicorn

    from customer_churn.cli.serving import serve
    from customer_churn.service import logs

    ran = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options, app=app))
    monkeypatch.setattr(logs, "configure_logging", lambda _: None)
    threshold = gc.get_threshold()
    try:
        serve(host=None, port=None, model_uri=str(trained.export_dir))
        assert ran["loop"] == "asyncio" and ran["access_log"] is False
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
