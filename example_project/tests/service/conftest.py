"""Fixtures of the service's tests: a service with a model, the same running on a local port,
and a valid record."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from customer_churn.contract import CONTRACT
from customer_churn.features import records_of
from customer_churn.fields import Categorical, Numeric
from customer_churn.service.app import create_app
from tests.recorder import free_port

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


@contextmanager
def running(app) -> Iterator[str]:
    """`app` served by uvicorn in a thread on a free loopback port: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def live(serving_model, settings):
    """The service with an API key, running on a local port: (base URL, key)."""
    key = "live-test-key"  # pragma: allowlist secret
    app = create_app(settings.model_copy(update={"api_key": SecretStr(key)}), serving_model)
    with running(app) as base:
        yield base, key
