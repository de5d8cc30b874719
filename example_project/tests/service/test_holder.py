"""The models served: loaded in the background, replaced only by one that loads and answers."""

import json
import logging
import shutil
import subprocess
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from customer_churn.errors import ModelLoadError
from customer_churn.registry.cache import cached_export, registry_cache
from customer_churn.registry.tracking import ALIAS
from customer_churn.service import holder as holder_module
from customer_churn.service.app import create_app
from customer_churn.service.holder import ModelHolder, load
from customer_churn.service.metrics import Metrics
from customer_churn.service.schemas import Record
from tests.recorder import closed_url


def test_reload_swaps_a_good_model_and_keeps_the_old_one_otherwise(
    serving_model, settings, trained, record, tmp_path
):
    secured = settings.model_copy(update={"api_key": SecretStr("k")})
    key = {"x-api-key": "k"}
    broken = tmp_path / "broken"
    shutil.copytree(trained.export_dir, broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    (broken / "pipeline.skops").write_bytes(b"not a pipeline")
    with TestClient(create_app(secured, serving_model)) as client:
        refused = client.post("/admin/reload", json={"model_uri": str(broken)}, headers=key)
        assert refused.status_code == 409 and "still serving version" in refused.json()["detail"]
        assert client.post("/predict", json=record, headers=key).status_code == 200
        missing = client.post(
            "/admin/reload", json={"model_uri": str(tmp_path / "none")}, headers=key
        )
        assert missing.status_code == 409
        swapped = client.post(
            "/admin/reload", json={"model_uri": str(trained.export_dir)}, headers=key
        )
        assert swapped.status_code == 200
        assert swapped.json()["version"] == trained.model_version


def test_a_registry_out_of_reach_fails_the_reload_not_the_service(
    serving_model, settings, record, monkeypatch
):
    # The pull runs in a separate process, which reads its settings from the environment.
    monkeypatch.setenv("CUSTOMER_CHURN_TRACKING_URI", closed_url())
    # The pull imports MLflow in a new process before it finds the server away: seconds, and
    # more on a busy machine; the request time-out is not what this test is about.
    secured = settings.model_copy(update={"api_key": SecretStr("k"), "request_timeout": 600.0})
    key = {"x-api-key": "k"}
    with TestClient(create_app(secured, serving_model)) as client:
        registry_uri = f"models:/{secured.registered_model_name}@champion"
        refused = client.post("/admin/reload", json={"model_uri": registry_uri}, headers=key)
        assert refused.status_code == 409, refused.text
        assert "cannot reach the tracking server" in refused.json()["detail"]
        assert client.get("/ready").json()["model_version"] == serving_model.version
        assert client.post("/predict", json=record, headers=key).status_code == 200


def test_readiness_is_503_until_a_model_loads(settings, tmp_path):
    absent = settings.model_copy(update={"model_uri": str(tmp_path / "nothing")})
    with TestClient(create_app(absent)) as client:
        for _ in range(100):
            body = client.get("/ready").json()
            if "no model at" in body.get("reason", ""):
                break
            time.sleep(0.05)
        response = client.get("/ready")
        assert response.status_code == 503 and "no model at" in response.json()["reason"]
        assert client.get("/health").status_code == 200
        assert (
            client.post(
                "/predict", json=Record.model_config["json_schema_extra"]["examples"][0]
            ).status_code
            == 503
        )


def _registry(settings, tmp_path, monkeypatch) -> tuple[str, object]:
    """A registry URI of the trained version, and settings whose cache lives in `tmp_path`;
    the pull's own process reads the tracking URI from the environment."""
    monkeypatch.setenv("CUSTOMER_CHURN_TRACKING_URI", settings.tracking_uri)
    local = settings.model_copy(update={"models_dir": tmp_path / "models"})
    return f"models:/{settings.registered_model_name}@{ALIAS}", local


def test_a_registry_model_pulled_once_serves_at_once_from_disk(
    trained, settings, tmp_path, monkeypatch
):
    uri, local = _registry(settings, tmp_path, monkeypatch)
    first = load(uri, local, use_cache=True)  # nothing on disk yet: pulled
    assert not first.from_cache and first.version == trained.model_version
    assert cached_export(uri, local) == first.folder
    # The registry away: the second start does not ask it, and serves the same version.
    monkeypatch.setenv("CUSTOMER_CHURN_TRACKING_URI", closed_url())
    second = load(uri, local, use_cache=True)
    assert second.from_cache and second.folder == first.folder
    assert second.version == trained.model_version
    # Asked behind the service's back, the registry out of reach changes nothing.
    holder = ModelHolder(local, Metrics())
    holder.install(second)
    holder.refresh(second)
    assert holder.champion is second
    # A reload asks the registry, whatever is on disk.
    with pytest.raises(ModelLoadError, match="cannot reach the tracking server"):
        load(uri, local)


def test_the_refresh_swaps_in_the_version_the_alias_names_now(
    trained, settings, tmp_path, monkeypatch
):
    """Served from a pull of an older version, the service installs the newer one the
    registry names now, through the same path as a reload."""
    uri, local = _registry(settings, tmp_path, monkeypatch)
    cache = registry_cache(uri, local)
    older = cache / "version-0"
    shutil.copytree(trained.export_dir, older)
    manifest = json.loads((older / "serving.json").read_text()) | {"version": "0"}
    (older / "serving.json").write_text(json.dumps(manifest))
    (cache / "current").write_text(older.name)
    served = load(uri, local, use_cache=True)
    assert served.from_cache and served.version == "0"
    holder = ModelHolder(local, Metrics())
    holder.install(served)
    holder.refresh(served)
    assert holder.champion.version == trained.model_version
    assert not holder.champion.from_cache
    assert cached_export(uri, local).name == f"version-{trained.model_version}"
    assert older.is_dir(), "the version before is kept (a service may still read it)"


def test_a_pull_stopped_by_the_shutdown_is_no_registry_failure(
    trained, settings, tmp_path, monkeypatch, caplog
):
    """Stopping the service signals its process group, the pull's process included: the
    check of the alias ends without blaming the registry, and the served version stays."""
    uri, local = _registry(settings, tmp_path, monkeypatch)
    cache = registry_cache(uri, local)
    shutil.copytree(trained.export_dir, cache / f"version-{trained.model_version}")
    (cache / "current").write_text(f"version-{trained.model_version}")
    served = load(uri, local, use_cache=True)
    holder = ModelHolder(local, Metrics())
    holder.install(served)
    stopped = subprocess.CompletedProcess([], returncode=-15, stdout="", stderr="")
    monkeypatch.setattr(holder_module.subprocess, "run", lambda *args, **kwargs: stopped)
    with caplog.at_level(logging.INFO, logger=holder_module.__name__):
        holder.refresh(served)
    assert holder.champion is served
    assert [r.levelname for r in caplog.records if "stopped by signal 15" in r.message] == ["INFO"]
    assert not any(r.levelno >= logging.WARNING for r in caplog.records), caplog.text
