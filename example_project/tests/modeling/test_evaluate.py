"""Evaluation beyond accuracy: segment gaps, explanations that add up, the production profile,
and the promotion gate that acts on them."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from customer_churn.contract import CONTRACT
from customer_churn.errors import ProjectError
from customer_churn.fields import Contract, Numeric, Target
from customer_churn.modeling import segments
from customer_churn.modeling.evaluate import PRIMARY_METRIC
from customer_churn.modeling.explain import Explainer, column_to_feature, raw_output
from customer_churn.modeling.segments import (
    GAP_METRIC,
    MISSING,
    segment_report,
    segment_values,
)
from customer_churn.registry.artifact import load_pipeline
from customer_churn.registry.export import as_records
from customer_churn.registry.profile import PROFILE_METRICS, measure
from customer_churn.registry.promote import judge, promote
from tests.conftest import make_settings

# A categorical segment of the contract, or its first categorical feature if none is marked.
SEGMENT = next(
    name for name in CONTRACT.segments + CONTRACT.categorical if name in CONTRACT.categorical
)
GOOD, BAD = CONTRACT.feature(SEGMENT).categories[:2]
LABELS = np.array(CONTRACT.target.labels, dtype=object)
NO_LIMITS = {"max_segment_gap": None, "max_p99_latency_ms": None, "max_artifact_mb": None}


def answers_of(quality: dict[str, float], rows: int = 1500, seed: int = 0):
    """Labelled rows in two segments and answers whose quality differs as `quality` says
    (1: right, 0: noise), each segment with `rows` rows."""
    rng = np.random.default_rng(seed)
    parts, answers, scores = [], [], []
    for value, share in quality.items():
        truth = rng.integers(0, 2, rows)
        score = np.clip(
            share * truth + (1 - share) * rng.random(rows) + rng.normal(0, 0.1, rows), 0, 1
        )
        answers.append(LABELS[(score > 0.5).astype(int)])
        scores.append(score)
        truth = LABELS[truth]  # two of the contract's classes
        parts.append(pd.DataFrame({SEGMENT: value, CONTRACT.target.name: truth}))
    probability = np.concatenate(scores) if scores else None
    if CONTRACT.target.multiclass:  # one column per class: the first two share the score
        rest = np.zeros((len(probability), len(LABELS) - 2))
        probability = np.column_stack([1 - probability, probability, rest])
    return pd.concat(parts, ignore_index=True), np.concatenate(answers), probability


def test_the_segment_report_finds_a_planted_gap():
    frame, predictions, probability = answers_of({GOOD: 1.0, BAD: 0.0})
    report = segment_report(frame, predictions, probability, features=[SEGMENT])
    gap = report.gaps[SEGMENT]
    assert gap.gap > 0.3 and (gap.best, gap.worst) == (GOOD, BAD), gap
    assert report.largest == gap and report.metrics()[f"segment_gap_{SEGMENT}"] == gap.gap
    assert set(report.table["value"]) == {GOOD, BAD}


def test_balanced_segments_show_no_gap():
    frame, predictions, probability = answers_of({GOOD: 0.5, BAD: 0.5})
    report = segment_report(frame, predictions, probability, features=[SEGMENT])
    assert report.gaps[SEGMENT].gap < 0.05, report.table[["value", GAP_METRIC]]


def test_small_segments_are_listed_but_not_compared():
    frame, predictions, probability = answers_of({GOOD: 1.0, BAD: 0.0}, rows=20)
    report = segment_report(frame, predictions, probability, features=[SEGMENT], min_rows=21)
    assert report.gaps == {} and report.largest is None and report.metrics() == {}
    assert list(report.table["rows"]) == [20, 20]
    with pytest.raises(ValueError, match=r"segment features \['nope'\] are not columns"):
        segment_report(frame, predictions, probability, features=["nope"])
    with pytest.raises(ValueError, match="3 predictions for 40 rows"):
        segment_report(frame, predictions[:3], probability, features=[SEGMENT])


def test_a_number_is_compared_across_its_bands(monkeypatch):
    age = Numeric("age", "Age", 18, 100, segment_bins=(30, 45, 65), protected=True)
    assert age.bands() == ["< 30", "30 to < 45", "45 to < 65", ">= 65"]
    target = Target("y", "y", "classification", (0, 1))
    with pytest.raises(ValueError, match="protected numeric 'age' needs segment_bins"):
        Contract((Numeric("age", "Age", protected=True),), target)
    with pytest.raises(ValueError, match="segment_bins of 'age' must increase"):
        Contract((Numeric("age", "Age", segment_bins=(45, 30)),), target)
    contract = Contract((age,), target)
    monkeypatch.setattr(segments, "CONTRACT", contract)
    frame = pd.DataFrame({"age": pd.array([18, 29, 30, 64, 65, 99, None], dtype="Int64"), "y": 0})
    values, _ = segment_values(frame, "age")
    assert list(values) == ["< 30", "< 30", "30 to < 45", "45 to < 65", ">= 65", ">= 65", MISSING]
    assert contract.protected == ["age"] and contract.segments == ["age"]


def test_training_records_segments_explanations_and_profile(trained, settings):
    gaps = json.loads((settings.reports_dir / "segments.json").read_text())
    assert gaps["gap_metric"] == GAP_METRIC
    assert set(gaps["gaps"]) <= set(CONTRACT.segments)
    assert gaps["gaps"] or not CONTRACT.segments
    if gaps["largest"] is not None:
        assert trained.metrics["test_segment_gap"] == gaps["largest"]["gap"]
    explanations = json.loads((settings.reports_dir / "explanations.json").read_text())
    for kind in ("permutation_importance", "mean_absolute_shap"):
        assert set(explanations[kind]["values"]) == set(CONTRACT.feature_names)
    for name in CONTRACT.segments:
        assert (settings.reports_dir / f"segments_{name}.png").stat().st_size > 5_000

    profile = trained.manifest["profile"]
    assert 0 < profile["single"]["p50_ms"] <= profile["single"]["p99_ms"]
    assert 0 < profile["batch"]["p50_ms"] <= profile["batch"]["p99_ms"]
    assert profile["batch"]["size"] == settings.profile_batch_size
    onnx_bytes = (trained.export_dir / profile["artifact_file"]).stat().st_size
    assert profile["artifact_mb"] == pytest.approx(onnx_bytes / 2**20, abs=1e-4)
    assert profile["rss_after_load_mb"] > profile["rss_before_load_mb"] > 0
    exported = json.loads((trained.export_dir / "serving.json").read_text())
    assert exported["profile"] == profile
    recorded = MlflowClient(settings.tracking_uri).get_run(trained.run_id).data.metrics
    assert set(PROFILE_METRICS) <= set(recorded)

    card = (settings.reports_dir / "model_card.md").read_text()
    for heading in ("## Explanations", "## Segments", "## Production profile"):
        assert heading in card
    assert f"| one record: p50 / p99 | {profile['single']['p50_ms']:.3f} ms" in card


def test_the_profile_refuses_an_empty_sample(trained):
    with pytest.raises(ProjectError, match="at least one record"):
        measure(trained.export_dir, [])


def test_explanations_add_up_to_the_model_output(trained, sample):
    pipeline = load_pipeline(trained.export_dir)
    background = trained.manifest["explanation"]["background"]
    explained = Explainer(pipeline, background).explain(sample)
    assert explained.contributions.shape == (len(sample), len(CONTRACT.features))
    # SHAP's promise: base value + contributions = the model's raw output, record by record.
    total = explained.base_value + explained.contributions.sum(axis=1)
    np.testing.assert_allclose(total, raw_output(pipeline, sample), rtol=1e-6, atol=1e-6)
    records = explained.as_records()
    assert list(records[0]["contributions"]) == CONTRACT.feature_names


def test_encoded_columns_map_back_to_one_feature_each(trained):
    preprocess = load_pipeline(trained.export_dir).named_steps["preprocess"]
    matrix = column_to_feature(preprocess)
    assert (matrix.sum(axis=1) == 1).all(), "every encoded column belongs to one feature"
    widths = dict(zip(CONTRACT.feature_names, matrix.sum(axis=0), strict=True))
    for feature in CONTRACT.features:
        expected = len(feature.categories) if feature.name in CONTRACT.categorical else 1
        assert widths[feature.name] == expected, feature.name


def test_the_gate_refuses_a_model_over_a_latency_or_fairness_limit(tmp_path):
    limited = make_settings(
        tmp_path,
        promotion_thresholds={},
        max_segment_gap=0.1,
        max_p99_latency_ms=5.0,
        max_artifact_mb=1.0,
        min_skill_over_baseline=0.0,
    )
    even = {PRIMARY_METRIC: 0.5, f"baseline_{PRIMARY_METRIC}": 0.5}  # no better, no worse
    within = even | {
        f"segment_gap_{SEGMENT}": 0.05,
        "profile_single_p99_ms": 4.0,
        "profile_artifact_mb": 0.5,
    }
    assert judge(limited, within, None) == []
    slow = judge(limited, within | {"profile_single_p99_ms": 7.5}, None)
    assert slow == [
        "single-record p99 latency (ms) 7.5000 is above the limit 5.0 (max_p99_latency_ms)"
    ]
    unfair = judge(limited, within | {f"segment_gap_{SEGMENT}": 0.25}, None)
    assert unfair == [
        f"{GAP_METRIC} gap 0.2500 between values of {SEGMENT} is above the limit 0.1 "
        "(max_segment_gap)"
    ]
    big = judge(limited, within | {"profile_artifact_mb": 3.0}, None)
    assert "serving artifact size (MB) 3.0000 is above the limit 1.0" in big[0]
    unmeasured = judge(limited, even, None)
    assert "no single-record p99 latency (ms) is recorded" in unmeasured[0]
    assert judge(limited.model_copy(update=NO_LIMITS), even, None) == []


def test_a_limit_is_lifted_by_an_empty_value_or_none(monkeypatch):
    from customer_churn.settings import ENV_PREFIX, Settings

    monkeypatch.setenv(f"{ENV_PREFIX}MAX_SEGMENT_GAP", "")
    monkeypatch.setenv(f"{ENV_PREFIX}MAX_P99_LATENCY_MS", "none")
    monkeypatch.setenv(f"{ENV_PREFIX}MAX_ARTIFACT_MB", "2.5")
    lifted = Settings(_env_file=None)
    assert (lifted.max_segment_gap, lifted.max_p99_latency_ms) == (None, None)
    assert lifted.max_artifact_mb == 2.5


def test_promote_refuses_the_trained_model_over_the_latency_limit(trained, settings):
    """The real gate, on the session's registry: the recorded profile is over a tiny limit."""
    strict = settings.model_copy(update={"promotion_thresholds": {}, "max_p99_latency_ms": 1e-6})
    decision = promote(strict)
    assert not decision.promoted
    assert any("max_p99_latency_ms" in reason for reason in decision.reasons), decision.reasons
    assert decision.challenger_metrics["profile_single_p99_ms"] > 0
    client = MlflowClient(settings.tracking_uri)
    tags = client.get_model_version(settings.registered_model_name, decision.challenger).tags
    assert tags["promotion.decision"] == "refused" and "p99 latency" in tags["promotion.reason"]


def test_profile_records_of_the_holdout_are_valid_requests(sample):
    records = as_records(sample)
    assert len(records) == len(sample) and set(records[0]) == set(CONTRACT.feature_names)
    assert all(v is None or v == v for record in records for v in record.values())


def _client(settings, model):
    from fastapi.testclient import TestClient

    from customer_churn.service.app import create_app

    return TestClient(create_app(settings.model_copy(update={"prediction_log": False}), model))


def test_the_api_explains_a_prediction_on_request(trained, serving_model, settings, sample):
    rows = sample.head(3)
    with _client(settings, serving_model) as client:
        plain = client.post("/predict", json=as_records(rows)[0])
        asked = client.post("/predict?explain=true", json=as_records(rows))
    assert plain.status_code == 200 and "explanations" not in plain.json()
    assert asked.status_code == 200, asked.text
    explanations = asked.json()["explanations"]
    assert len(explanations) == len(rows) == len(asked.json()["predictions"])
    exact = raw_output(load_pipeline(trained.export_dir), rows)
    for explanation, output in zip(explanations, exact, strict=True):
        assert list(explanation["contributions"]) == CONTRACT.feature_names
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(output, rel=1e-6, abs=1e-6)
        assert explanation["output"] == pytest.approx(output, rel=1e-6, abs=1e-6)


def test_without_shap_the_api_says_how_to_enable_explanations(
    trained, settings, sample, monkeypatch
):
    import sys

    from customer_churn.registry.artifact import load_serving_model

    monkeypatch.setitem(sys.modules, "shap", None)  # as in the serving image: not installed
    fresh = load_serving_model(trained.export_dir)
    record = as_records(sample.head(1))[0]
    with _client(settings, fresh) as client:
        refused = client.post("/predict?explain=true", json=record)
        assert client.post("/predict", json=record).status_code == 200
    assert refused.status_code == 501
    assert "explanations need the 'shap' package" in refused.json()["detail"]
