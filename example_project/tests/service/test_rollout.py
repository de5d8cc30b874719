"""Rollouts: the split sends its share of keys and is sticky, shadow never changes an answer
nor fails a request, and the settings refuse what cannot work."""

import dataclasses
import re
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from customer_churn.contract import CONTRACT
from customer_churn.features import records_of
from customer_churn.sampling import sample_rows
from customer_churn.service.app import create_app
from customer_churn.service.prediction_log import read_log
from customer_churn.service.rollout import CHALLENGER, CHAMPION, choose
from customer_churn.settings import Settings

KEYS = 10_000
# The binomial standard deviation of a share p over 10,000 keys is at most 0.005: 0.015 is
# three of them, so a fair hash stays within it.
SHARE_TOLERANCE = 0.015


def as_records(frame) -> list[dict]:
    return records_of(frame)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return as_records(sample_rows(200, seed=5))


def renamed(model, version: str):
    """The same model under another version number: a challenger that agrees."""
    return dataclasses.replace(model, manifest=model.manifest | {"version": version})


def contrary(model, version: str):
    """A challenger that disagrees with `model` on every record."""
    challenger = renamed(model, version)

    def predict_records(records):
        predictions, probabilities = model.predict_records(records)
        labels = CONTRACT.target.labels
        others = [labels[(labels.index(label) + 1) % len(labels)] for label in predictions]
        return np.array(others), np.roll(probabilities, 1, axis=1)

    challenger.predict_records = predict_records
    return challenger


def failing(model, version: str):
    """A challenger that raises on every request."""
    challenger = renamed(model, version)

    def predict_records(records):
        raise RuntimeError("the challenger is broken")

    challenger.predict_records = predict_records
    return challenger


def rollout_settings(settings, tmp_path, **changes):
    values = {
        "prediction_log_dir": tmp_path / "predictions",
        "access_log": False,
        "max_queue_delay_ms": 10_000,  # a busy test machine must not shed these requests
    }
    return settings.model_copy(update=values | changes)


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5])
def test_the_split_sends_the_configured_share_of_keys(share):
    keys = [f"customer-{index}" for index in range(KEYS)]
    measured = sum(choose(key, share) == CHALLENGER for key in keys) / KEYS
    print(f"\nsplit share {share}: {measured:.4f} of {KEYS} keys to the challenger")
    assert abs(measured - share) <= SHARE_TOLERANCE
    assert [choose(key, share) for key in keys[:500]] == [choose(key, share) for key in keys[:500]]


def test_the_split_is_sticky_and_says_which_variant_answered(
    serving_model, settings, records, tmp_path
):
    configured = rollout_settings(settings, tmp_path, rollout_mode="split", rollout_share=0.3)
    challenger = renamed(serving_model, "challenger-1")
    answered = {}
    with TestClient(create_app(configured, serving_model, challenger)) as client:
        for index in range(300):
            key = f"customer-{index % 100}"  # each key three times
            response = client.post(
                "/predict",
                json=records[index % len(records)],
                headers={"x-rollout-key": key, "x-request-id": f"split-{index}"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            answered.setdefault(key, set()).add((body["variant"], body["model_version"]))
        metrics = client.get("/metrics").text
    assert all(len(seen) == 1 for seen in answered.values()), "a key met two models"
    for key, seen in answered.items():
        variant, version = seen.pop()
        assert variant == choose(key, 0.3)
        assert version == ("challenger-1" if variant == CHALLENGER else serving_model.version)
    logged, _ = read_log(tmp_path / "predictions")
    assert len(logged) == 300 and not any(r["shadow"] for r in logged)
    assert {r["variant"] for r in logged} == {CHAMPION, CHALLENGER}
    for variant in (CHAMPION, CHALLENGER):
        labels = 'variant="' + variant + '"'
        assert re.search(r'predictions_total\{outcome="[^"]+",' + labels + r"\} [1-9]", metrics)
        assert "model_latency_seconds_count{" + labels + "}" in metrics


def test_split_without_a_key_header_still_answers_from_one_model(
    serving_model, settings, records, tmp_path
):
    configured = rollout_settings(settings, tmp_path, rollout_mode="split", rollout_share=1.0)
    with TestClient(create_app(configured, serving_model, renamed(serving_model, "9"))) as client:
        body = client.post("/predict", json=records[0]).json()
    assert body["variant"] == CHALLENGER and body["model_version"] == "9"


def test_shadow_never_changes_the_answer_and_logs_the_challenger(
    serving_model, settings, records, tmp_path
):
    single = rollout_settings(settings, tmp_path / "single")
    with TestClient(create_app(single, serving_model)) as client:
        alone = [client.post("/predict", json=r).json()["predictions"] for r in records[:100]]
    shadowed = rollout_settings(settings, tmp_path, rollout_mode="shadow")
    challenger = contrary(serving_model, "challenger-2")
    with TestClient(create_app(shadowed, serving_model, challenger)) as client:
        answers = []
        for index, record in enumerate(records[:100]):
            sent = {"x-request-id": f"s{index}"}
            body = client.post("/predict", json=record, headers=sent).json()
            assert body["variant"] == CHAMPION and body["model_version"] == serving_model.version
            answers.append(body["predictions"])
        # Leaving the client stops the app: the shadow queue is scored and the log written.
    assert answers == alone
    logged, _ = read_log(tmp_path / "predictions")
    served = {r["request_id"]: r for r in logged if not r["shadow"]}
    shadow = {r["request_id"]: r for r in logged if r["shadow"]}
    assert set(served) == set(shadow) == {f"s{index}" for index in range(100)}
    assert {r["variant"] for r in shadow.values()} == {CHALLENGER}
    assert {r["model_version"] for r in shadow.values()} == {"challenger-2"}
    assert all(shadow[k]["prediction"] != served[k]["prediction"] for k in served)


def test_a_failing_challenger_in_shadow_never_fails_a_request(
    serving_model, settings, records, tmp_path
):
    shadowed = rollout_settings(settings, tmp_path, rollout_mode="shadow")
    with TestClient(create_app(shadowed, serving_model, failing(serving_model, "3"))) as client:
        statuses = [client.post("/predict", json=r).status_code for r in records[:50]]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = client.get("/metrics").text
            if 'shadow_requests_total{result="error"} 50.0' in metrics:
                break
            time.sleep(0.05)
    assert statuses == [200] * 50
    assert 'shadow_requests_total{result="error"} 50.0' in metrics
    assert 'shadow_requests_total{result="ok"} 0.0' in metrics


@pytest.mark.parametrize("mode", ["split", "shadow"])
def test_a_challenger_that_cannot_load_leaves_the_champion_answering(
    serving_model, settings, records, tmp_path, mode
):
    missing = str(tmp_path / "none")
    configured = rollout_settings(
        settings, tmp_path, rollout_mode=mode, rollout_share=1.0, challenger_uri=missing
    )
    with TestClient(create_app(configured, serving_model)) as client:
        deadline = time.monotonic() + 30
        while client.app.state.models.challenger_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "none" in client.app.state.models.challenger_error
        for record in records[:20]:
            response = client.post("/predict", json=record)
            assert response.status_code == 200 and response.json()["variant"] == CHAMPION
        assert "challenger_loaded 0.0" in client.get("/metrics").text


def test_shadow_scoring_never_holds_up_an_answer(serving_model, settings, records, tmp_path):
    """The challenger scores on a thread of its own: every answer comes back while it is
    held, and what it scored is logged once it is let go. (What shadow mode costs in
    latency is a figure of the serving benchmark, not a test.)"""
    release, scored = threading.Event(), []
    challenger = renamed(serving_model, "2")

    def held(batch):
        release.wait(timeout=10)  # in line with the answers, each would wait this long
        scored.append(len(batch))
        return serving_model.predict_records(batch)

    challenger.predict_records = held
    shadowed = rollout_settings(settings, tmp_path, rollout_mode="shadow")
    with TestClient(create_app(shadowed, serving_model, challenger)) as client:
        for index, record in enumerate(records[:5]):
            response = client.post("/predict", json=record, headers={"x-request-id": f"h{index}"})
            assert response.status_code == 200, response.text
        assert scored == [], "an answer waited for the challenger"
        release.set()
    logged, _ = read_log(tmp_path / "predictions")
    shadow = sorted(r["request_id"] for r in logged if r["shadow"])
    assert shadow == sorted(f"h{index}" for index in range(5))


def test_the_challenger_can_be_reloaded_in_a_rollout_only(
    serving_model, settings, trained, tmp_path
):
    key = {"x-api-key": "s3cret"}
    body = {"variant": "challenger", "model_uri": str(trained.export_dir)}
    shadowed = rollout_settings(
        settings, tmp_path, rollout_mode="shadow", api_key=SecretStr("s3cret")
    )
    with TestClient(create_app(shadowed, serving_model, renamed(serving_model, "old"))) as client:
        reloaded = client.post("/admin/reload", json=body, headers=key)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json() | {"backend": None} == {
            "variant": "challenger",
            "previous_version": "old",
            "version": trained.model_version,
            "backend": None,
        }
    single = rollout_settings(settings, tmp_path, api_key=SecretStr("s3cret"))
    with TestClient(create_app(single, serving_model)) as client:
        refused = client.post("/admin/reload", json=body, headers=key)
    assert refused.status_code == 409 and "rollout_mode 'single'" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"rollout_mode": "canary"}, "rollout_mode"),
        ({"rollout_share": 1.5}, "rollout_share"),
        ({"rollout_key_header": "x rollout"}, "rollout_key_header"),
        ({"rollout_mode": "split", "challenger_uri": " "}, "challenger_uri"),
    ],
)
def test_bad_rollout_settings_are_refused_by_name(changes, named):
    with pytest.raises(ValidationError, match=named):
        Settings(_env_file=None, **changes)


def test_the_key_header_is_matched_in_any_case():
    assert Settings(_env_file=None, rollout_key_header="X-Customer-Id").rollout_key_header == (
        "x-customer-id"
    )


# ------------------------------------------------------------------ the online comparison
def _shadow_traffic(serving_model, settings, folder, challenger, count=150):
    """Shadowed requests as the service logs them, and a labels file for them."""
    frame = sample_rows(count, seed=9)
    configured = rollout_settings(settings, folder, rollout_mode="shadow")
    with TestClient(create_app(configured, serving_model, challenger)) as client:
        for index, record in enumerate(as_records(frame)):
            response = client.post("/predict", json=record, headers={"x-request-id": f"q{index}"})
            assert response.status_code == 200
    labels = folder / "labels.csv"
    frame.assign(request_id=[f"q{index}" for index in range(count)])[
        ["request_id", CONTRACT.target.name]
    ].to_csv(labels, index=False)
    return configured, labels


def test_a_challenger_that_agrees_may_be_promoted(serving_model, settings, tmp_path, trained):
    from customer_churn.monitoring.drift import run

    configured, labels = _shadow_traffic(
        serving_model, settings, tmp_path, renamed(serving_model, "7")
    )
    configured = configured.model_copy(update={"monitoring_dir": tmp_path / "monitoring"})
    result = run(configured, model_uri=str(trained.export_dir), labels=labels)
    assert result["window"] == 150, "the drift job reads only what callers saw"
    comparison = result["rollout"]
    assert comparison["verdict"]["may_promote"], comparison["verdict"]
    assert comparison["agreement"] == {"pairs": 150, "rate": 1.0}
    assert comparison["variants"]["challenger"]["version"] == "7"
    variants = comparison["variants"]
    # One model twice: its float32 answers may differ in their last digits, no more.
    assert variants["challenger"]["live"] == pytest.approx(variants["champion"]["live"], rel=1e-6)
    assert (tmp_path / "monitoring" / "rollout.json").is_file()


def test_a_challenger_that_disagrees_is_held_back(serving_model, settings, tmp_path):
    from customer_churn.monitoring.variants import compare_variants

    configured, labels = _shadow_traffic(
        serving_model, settings, tmp_path, contrary(serving_model, "8")
    )
    logged, _ = read_log(configured.prediction_log_dir)
    blind = compare_variants(logged, 1000, None, configured)
    assert not blind["verdict"]["may_promote"]
    assert blind["agreement"]["rate"] < configured.rollout_min_agreement
    assert any("agree" in reason for reason in blind["verdict"]["reasons"])
    judged = compare_variants(logged, 1000, labels, configured)
    assert not judged["verdict"]["may_promote"]
    assert any(reason.startswith("live ") for reason in judged["verdict"]["reasons"])


def test_too_little_challenger_traffic_is_no_verdict(serving_model, settings, tmp_path):
    from customer_churn.monitoring.variants import compare_variants

    configured, _ = _shadow_traffic(
        serving_model, settings, tmp_path, renamed(serving_model, "4"), count=20
    )
    logged, _ = read_log(configured.prediction_log_dir)
    comparison = compare_variants(logged, 1000, None, configured)
    assert not comparison["verdict"]["may_promote"]
    assert "rollout_min_records" in comparison["verdict"]["reasons"][0]
    assert compare_variants([r for r in logged if not r["shadow"]], 1000, None, configured) is None
