"""The promotion gate: the newest registered version becomes `champion` only when it earns it.

It scores the newest version (the challenger) and the champion on the same holdout (a run
that scored this very holdout gives its recorded figures instead). The challenger must meet
every absolute threshold, beat the baseline (features ignored: baseline.py) by the minimum
skill and the champion by the margin; the decision and its figures become tags on both
versions, and only then does the alias move. The first version, or the first of a changed
feature contract (whose champion cannot be scored on the new data), is judged without a
champion; the decision says so.

Accuracy is not enough: the challenger must also keep every segment gap (measured here, on
the holdout), its single-record p99 latency and its artifact size (from the production
profile its training run recorded) within the limits of the settings. Every move of the alias
is kept in its history, where `rollback` finds the champion before (champions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from ..contract import CONTRACT
from ..errors import ProjectError
from ..modeling import baseline
from ..modeling.evaluate import LOWER_IS_BETTER, PRIMARY_METRIC, compute_metrics
from ..modeling.fit import labelled_split
from ..modeling.segments import GAP_METRIC, report_for
from ..settings import Settings
from . import champions
from .cache import seed
from .champions import CHAMPION
from .profile import PROFILE_METRICS
from .receipt import HOLDOUT_TAG, holdout_key
from .store import configure_tracking
from .tracking import CONTRACT_TAG, another_contract

SEGMENT_GAP = "segment_gap_"  # figures segment_gap_<feature>, one per compared feature
# setting -> (figure of the challenger, what it is)
LIMITS = {
    "max_p99_latency_ms": ("profile_single_p99_ms", "single-record p99 latency (ms)"),
    "max_artifact_mb": ("profile_artifact_mb", "serving artifact size (MB)"),
}


@dataclass
class Decision:
    promoted: bool
    challenger: str
    champion: str | None
    reasons: list[str] = field(default_factory=list)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""  # what the decision rests on beyond the figures (a contract change)

    @property
    def summary(self) -> str:
        note = f" ({self.note})" if self.note else ""
        if self.promoted:
            previous = f" (replacing version {self.champion})" if self.champion else ""
            return f"version {self.challenger} promoted to {CHAMPION}{previous}{note}"
        return f"version {self.challenger} refused{note}: " + "; ".join(self.reasons)


def _better_by(metric: str, challenger: float, champion: float) -> float:
    return champion - challenger if metric in LOWER_IS_BETTER else challenger - champion


def judge(settings: Settings, challenger: dict, champion: dict | None) -> list[str]:
    """Reasons to refuse the challenger (none means promote)."""
    reasons = []
    for metric, bound in settings.promotion_thresholds.items():
        if metric not in challenger:
            raise ProjectError(
                f"promotion threshold on unknown metric '{metric}': "
                f"choose among {sorted(challenger)}"
            )
        value = challenger[metric]
        if metric in LOWER_IS_BETTER and value > bound:
            reasons.append(f"{metric} {value:.4f} is above the maximum {bound}")
        elif metric not in LOWER_IS_BETTER and value < bound:
            reasons.append(f"{metric} {value:.4f} is below the minimum {bound}")
    reasons += baseline.shortfall(challenger, settings.min_skill_over_baseline)
    reasons += _beyond_accuracy(settings, challenger)
    if champion is not None:
        gain = _better_by(PRIMARY_METRIC, challenger[PRIMARY_METRIC], champion[PRIMARY_METRIC])
        if gain < settings.promotion_margin:
            reasons.append(
                f"{PRIMARY_METRIC} {challenger[PRIMARY_METRIC]:.4f} does not beat the champion's "
                f"{champion[PRIMARY_METRIC]:.4f} by the margin {settings.promotion_margin}"
            )
    return reasons


def _beyond_accuracy(settings: Settings, challenger: dict) -> list[str]:
    """Reasons from the segment gaps and the production profile."""
    reasons = []
    if settings.max_segment_gap is not None:
        for figure, gap in sorted(challenger.items()):
            if figure.startswith(SEGMENT_GAP) and gap > settings.max_segment_gap:
                reasons.append(
                    f"{GAP_METRIC} gap {gap:.4f} between values of "
                    f"{figure.removeprefix(SEGMENT_GAP)} is above the limit "
                    f"{settings.max_segment_gap} (max_segment_gap)"
                )
    for setting, (figure, label) in LIMITS.items():
        limit = getattr(settings, setting)
        if limit is None:
            continue
        if figure not in challenger:
            reasons.append(f"no {label} is recorded for the challenger: retrain it to measure it")
        elif challenger[figure] > limit:
            reasons.append(
                f"{label} {challenger[figure]:.4f} is above the limit {limit} ({setting})"
            )
    return reasons


def promote(settings: Settings) -> Decision:
    """Judge the newest version against the champion; move the alias if it wins."""
    from mlflow import MlflowClient

    configure_tracking(settings)
    client = MlflowClient()
    name = settings.registered_model_name
    challenger, champion = _contenders(client, name)
    if champion is not None and str(champion.version) == str(challenger.version):
        seed_serving_cache(settings, str(champion.version))
        return Decision(True, str(challenger.version), str(champion.version), ["already champion"])

    score = _scorer(client, settings)
    challenger_metrics = score(challenger)
    if challenger_metrics is None:
        raise ProjectError(
            f"version {challenger.version} was trained on another feature contract than this "
            "project's: run the train command on this contract, then promote"
        )
    champion_metrics = score(champion) if champion is not None else None
    note = ""
    if champion is not None and champion_metrics is None:
        note = (
            f"the champion, version {champion.version}, was trained on another feature "
            f"contract: version {challenger.version} is judged on the thresholds alone"
        )
    reasons = judge(settings, challenger_metrics, champion_metrics)
    decision = Decision(
        not reasons,
        str(challenger.version),
        str(champion.version) if champion is not None else None,
        reasons,
        challenger_metrics,
        champion_metrics or {},
        note,
    )
    _record(client, name, decision)
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
        why = "; ".join(filter(None, ("met every threshold and the margin", note)))
        champions.record(client, name, challenger.version, decision.champion, "promote", why)
        seed_serving_cache(settings, str(challenger.version))
    return decision


def _scorer(client, settings: Settings):
    """`score(model_version)`: the version's holdout metrics and segment gaps, with the profile
    its training run recorded; None for a model of another contract.

    A version whose run scored this very holdout (the same data file, split and segment rule:
    its `holdout` tag) is judged on the figures its run recorded, without downloading it: the
    newest version, just trained, is the usual case. Any other is scored here, on the holdout
    split once."""
    current = holdout_key(settings)

    split = cache(lambda: labelled_split(settings))
    beside = cache(lambda: baseline.holdout_figures(*split()))  # the baseline's, to beat

    def score(model_version) -> dict[str, float] | None:
        run = client.get_run(model_version.run_id).data
        profile = {key: run.metrics[key] for key in PROFILE_METRICS if key in run.metrics}
        fingerprint = (model_version.tags or {}).get(CONTRACT_TAG)
        if fingerprint == CONTRACT.fingerprint() and run.tags.get(HOLDOUT_TAG) == current:
            recorded = {k: v for k, v in run.metrics.items() if k.startswith("test_")}
            return {k.removeprefix("test_"): v for k, v in recorded.items()} | profile | beside()
        uri = f"models:/{settings.registered_model_name}/{model_version.version}"
        pipeline = contract_pipeline(model_version, uri)  # None: another contract's
        if pipeline is None:
            return None
        segments = report_for(pipeline, split()[1], settings.segment_min_rows).metrics()
        return compute_metrics(pipeline, split()[1]) | segments | profile | beside()

    return score


def contract_pipeline(model_version, uri: str):
    """The pipeline of a registered version trained on this project's feature contract, else
    None. A version tagged with another contract's fingerprint is not downloaded; one
    registered before fingerprints is judged by the features and classes it was fitted on."""
    import mlflow

    if another_contract(model_version):
        return None
    pipeline = mlflow.sklearn.load_model(uri)
    if CONTRACT_TAG in (model_version.tags or {}):
        return pipeline
    fitted = list(getattr(pipeline, "feature_names_in_", CONTRACT.feature_names))
    classes = getattr(pipeline, "classes_", None)
    if classes is not None and classes.tolist() != CONTRACT.target.labels:
        return None
    return pipeline if fitted == CONTRACT.feature_names else None


def _contenders(client, name: str):
    """The newest registered version and the current champion (None without one)."""
    from mlflow.exceptions import MlflowException

    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise ProjectError(f"no version of '{name}' is registered: run the train command first")
    challenger = max(versions, key=lambda v: int(v.version))
    try:
        return challenger, client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return challenger, None


def seed_serving_cache(settings: Settings, version: str) -> None:
    """When the service loads `@champion` and training's export on disk is that version, put
    it where a pull would: the next start of the service serves it without a download."""
    source = f"models:/{settings.registered_model_name}@{CHAMPION}"
    if settings.model_source == source:
        seed(source, settings.export_dir, version, settings)


def _record(client, name: str, decision: Decision) -> None:
    """Tags on both versions: the decision, its reasons and the figures it rests on."""
    tags = {
        "promotion.decision": "promoted" if decision.promoted else "refused",
        "promotion.reason": "; ".join(decision.reasons) or "met every threshold and the margin",
        "promotion.at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promotion.challenger": decision.challenger,
        "promotion.champion": decision.champion or "none",
    }
    if decision.note:
        tags["promotion.note"] = decision.note
    for role in ("challenger", "champion"):
        figures = getattr(decision, f"{role}_metrics")
        tags |= {f"promotion.{role}.{name}": f"{value:.6f}" for name, value in figures.items()}
    for model_version in filter(None, (decision.challenger, decision.champion)):
        for key, value in tags.items():
            client.set_model_version_tag(name, model_version, key, value)
