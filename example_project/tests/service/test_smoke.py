"""The smoke test of a deployment, against the service running for real on a local port."""

import pytest

from customer_churn.service.smoke import SmokeTestFailed, smoke_test
from tests.recorder import free_port


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
        smoke_test(f"http://127.0.0.1:{free_port()}", wait=1)
