"""The smoke test of a deployment, against the service running for real on a local port."""

import socket
import threading
import time

import pytest
import uvicorn
from pydantic import SecretStr

from customer_churn.service.app import create_app
from customer_churn.service.smoke import SmokeTestFailed, smoke_test


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live(serving_model, settings):
    """The service with an API key, served by uvicorn in a thread: (base URL, key)."""
    key = "smoke-test-key"
    app = create_app(settings.model_copy(update={"api_key": SecretStr(key)}), serving_model)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service did not start"
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(timeout=30)


def test_a_running_service_passes_and_names_its_model_version(live, trained):
    base, key = live
    result = smoke_test(base + "/", expect_version=trained.model_version, api_key=key)
    assert result.version == str(trained.model_version)
    assert result.ready_seconds < 5
    assert set(result.prediction) >= {"prediction"}


def test_another_model_version_fails(live, trained):
    base, key = live
    with pytest.raises(SmokeTestFailed, match=r"serves model version \S+, not the expected 999"):
        smoke_test(base, expect_version="999", api_key=key)


def test_a_refused_prediction_fails_with_its_status(live):
    base, _ = live
    with pytest.raises(SmokeTestFailed, match=r"POST .*/predict answered 401"):
        smoke_test(base, api_key="not-the-key")  # pragma: allowlist secret


def test_no_service_fails_after_the_wait():
    with pytest.raises(SmokeTestFailed, match=r"/ready did not answer 200 within 1 s"):
        smoke_test(f"http://127.0.0.1:{_free_port()}", wait=1)
