"""Fixtures of the service's tests: a service with a model, the same running on a local port,
and a valid record."""

import socket
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from customer_churn.contract import CONTRACT
from customer_churn.features import records_of
from customer_churn.fields import Categorical, Numeric
from customer_churn.service.app import create_app

BOUNDED = next(f for f in CONTRACT.features if isinstance(f, Numeric) and f.maximum is not None)
CATEGORICAL = next(f for f in CONTRACT.features if isinstance(f, Categorical))


@pytest.fixture(scope="module")
def client(serving_model, settings):
    app = create_app(settings.model_copy(update={"max_batch_size": 50}), serving_model)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def record(sample):
    """One valid record as JSON (missing values become null)."""
    return records_of(sample.head(1))[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live(serving_model, settings):
    """The service with an API key, served by uvicorn in a thread: (base URL, key)."""
    key = "live-test-key"  # pragma: allowlist secret
    app = create_app(settings.model_copy(update={"api_key": SecretStr(key)}), serving_model)
    port = free_port()
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
