"""The drift job: compares a window of the prediction log with the training reference.

Per feature, a test suited to its type: numbers by the population stability index (PSI, on
deciles of the reference) with the Kolmogorov-Smirnov p-value alongside; categories by the
Jensen-Shannon distance with the chi-square p-value alongside. The PSI and Jensen-Shannon
scores decide (p-values flag trivial shifts once windows are large); the predictions are
tested like a number. When labels arrive (a file of request ids and targets), the live
metrics of the logged predictions are compared with the holdout's.

The tests come from scipy, already a dependency through scikit-learn. Evidently, the usual
library for this, does not import with pandas 3, and pinning pandas 2 for the whole project
to get a report is a worse trade than these few well-known formulas.

When the log holds a challenger's predictions (a split or shadow rollout), the same job
compares the two variants on that traffic (prediction distributions, agreement on shadowed
records, live metrics once labels arrive) and says whether the challenger may be promoted;
`promote` remains the gate that moves the alias.

Writes `drift.json` (the service exposes it as Prometheus gauges), `drift.html` (the report a
person reads), `rollout.json` (the comparison, when there is one) and a dated copy of the drift
JSON into the monitoring folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ..contract import CONTRACT
from ..data.ingest import load_table
from ..errors import DataError
from ..fields import Categorical
from ..modeling import evaluate
from ..registry.artifact import MANIFEST, REFERENCE_FILE, REGISTRY_SCHEMES
from ..service.prediction_log import read_log
from ..service.rollout import CHALLENGER, CHAMPION
from ..settings import Settings

EPSILON = 1e-4  # floor of a bin's share in PSI: an empty bin would make it infinite
MISSING = "(missing)"


@dataclass
class Drift:
    """The verdict on one column."""

    name: str
    kind: str  # "numeric" or "categorical"
    statistic: str  # "psi" or "jensen_shannon"
    score: float
    threshold: float
    drifted: bool
    test: str  # "ks" or "chi2"
    p_value: float | None


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `current` against `reference`, on reference deciles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
    )
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    expected = np.clip(expected / expected.sum(), EPSILON, None)
    actual = np.clip(actual / actual.sum(), EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _numeric(name: str, reference: pd.Series, current: pd.Series, threshold: float) -> Drift:
    ref = reference.dropna().to_numpy(dtype=float)
    cur = current.dropna().to_numpy(dtype=float)
    if len(ref) == 0 or len(cur) == 0:
        return Drift(name, "numeric", "psi", 0.0, threshold, False, "ks", None)
    score = psi(ref, cur)
    p_value = float(stats.ks_2samp(ref, cur).pvalue)
    return Drift(name, "numeric", "psi", score, threshold, score > threshold, "ks", p_value)


def _categorical(
    name: str, reference: pd.Series, current: pd.Series, categories, threshold: float
) -> Drift:
    levels = [*categories, MISSING]
    ref = reference.astype(object).fillna(MISSING).value_counts().reindex(levels, fill_value=0)
    cur = current.astype(object).fillna(MISSING).value_counts().reindex(levels, fill_value=0)
    score = float(jensenshannon(ref.to_numpy(float), cur.to_numpy(float), base=2))
    seen = (ref + cur) > 0
    p_value = None
    if seen.sum() > 1:
        p_value = float(stats.chi2_contingency(np.vstack([ref[seen], cur[seen]]))[1])
    return Drift(
        name, "categorical", "jensen_shannon", score, threshold, score > threshold, "chi2", p_value
    )


def compare(reference: pd.DataFrame, current: pd.DataFrame, settings: Settings) -> dict[str, Drift]:
    """The drift verdict of every contract feature, `current` against `reference`."""
    verdicts = {}
    for feature in CONTRACT.features:
        if isinstance(feature, Categorical):
            verdicts[feature.name] = _categorical(
                feature.name,
                reference[feature.name],
                current[feature.name],
                feature.categories,
                settings.drift_js_threshold,
            )
        else:
            verdicts[feature.name] = _numeric(
                feature.name,
                reference[feature.name],
                current[feature.name],
                settings.drift_psi_threshold,
            )
    return verdicts


def _served_column() -> str:
    """The column whose distribution stands for the predictions: P(class 1), or the value."""
    return "probability" if CONTRACT.target.kind == "classification" else "prediction"


def load_reference(source: str, settings: Settings) -> tuple[pd.DataFrame, dict[str, Any], Path]:
    """The drift reference and manifest of a model export (pulled first for a registry URI)."""
    folder = Path(source)
    if source.startswith(REGISTRY_SCHEMES):
        from ..registry.tracking import pull

        folder = pull(source, settings, settings.models_dir / "monitoring-reference")
    if not (folder / MANIFEST).is_file():
        raise DataError(
            f"no model export at '{source}': train first, or pass --model-uri with an export "
            "folder or a models:/ URI"
        )
    if not (folder / REFERENCE_FILE).is_file():
        raise DataError(
            f"the export at '{folder}' has no {REFERENCE_FILE}: it was trained before drift "
            "monitoring existed; train again to create it"
        )
    manifest = json.loads((folder / MANIFEST).read_text())
    return pd.read_parquet(folder / REFERENCE_FILE), manifest, folder


LOGGED = ("request_id", "row", "model_version", "time", "latency_ms", "prediction", "probability")


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Logged records as a frame: features, prediction, ids and the variant that made it."""
    frame = pd.DataFrame([r["inputs"] for r in records], columns=CONTRACT.feature_names)
    for key in LOGGED:
        frame[key] = [r.get(key) for r in records]
    frame["variant"] = [r.get("variant", CHAMPION) for r in records]
    return frame


def logged_window(
    log_dir: Path, window: int, minimum: int, records: list[dict[str, Any]] | None = None
) -> tuple[pd.DataFrame, int]:
    """The last `window` records the callers saw (shadow scores left out) as a frame, and the
    number of unreadable lines skipped."""
    unreadable = 0
    if records is None:
        records, unreadable = read_log(log_dir)
    served = [r for r in records if not r.get("shadow")]
    if len(served) < minimum:
        raise DataError(
            f"the prediction log in '{log_dir}' holds {len(served)} records; the drift job "
            f"needs at least {minimum} (setting drift_min_records): send traffic first"
        )
    return _frame(served[-window:]), unreadable


def _labelled(logged: pd.DataFrame, labels_path: Path) -> pd.DataFrame:
    """Logged records joined with the labels that arrived (by request_id and row)."""
    target = CONTRACT.target.name
    labels = load_table(labels_path)
    missing = [c for c in ("request_id", target) if c not in labels.columns]
    if missing:
        raise DataError(
            f"the labels file '{labels_path}' lacks the column(s) {missing}: it needs "
            f"request_id, {target} and optionally row (default 0)"
        )
    if "row" not in labels.columns:
        labels = labels.assign(row=0)
    labels = labels[["request_id", "row", target]].astype({"request_id": str, "row": int})
    return logged.astype({"request_id": str, "row": int}).merge(labels, on=["request_id", "row"])


def live_performance(
    logged: pd.DataFrame, labels_path: Path, manifest: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """Metrics of the logged predictions whose labels arrived, against the holdout's."""
    target = CONTRACT.target.name
    joined = _labelled(logged, labels_path)
    if len(joined) < settings.drift_min_records:
        raise DataError(
            f"only {len(joined)} logged records match a label in '{labels_path}' (by request_id "
            f"and row); at least {settings.drift_min_records} are needed"
        )
    probability = joined.get("probability")
    try:
        live = evaluate.score(joined[target], joined["prediction"], probability)
    except ValueError as error:  # e.g. ROC AUC of a window holding one class only
        raise DataError(f"the labelled records cannot be scored: {error}") from error
    primary = evaluate.PRIMARY_METRIC
    reference = manifest.get("metrics", {}).get(f"test_{primary}")
    decay = None
    if reference:
        change = (float(live[primary]) - reference) / abs(reference)
        decay = change if primary in evaluate.LOWER_IS_BETTER else -change
    return {
        "labelled": len(joined),
        "live": {name: float(value) for name, value in live.items()},
        "primary_metric": primary,
        "reference": reference,
        "decay": decay,
        "threshold": settings.drift_max_metric_decay,
        "decayed": decay is not None and decay > settings.drift_max_metric_decay,
    }


def run(
    settings: Settings,
    *,
    model_uri: str | None = None,
    log_dir: Path | None = None,
    window: int | None = None,
    labels: Path | None = None,
    output_dir: Path | None = None,
) -> dict[str, Any]:
    """Compare the last window of the prediction log with the reference; write the results."""
    reference, manifest, _ = load_reference(model_uri or settings.model_source, settings)
    log_dir = log_dir or settings.prediction_log_dir
    window = window or settings.drift_window
    records, unreadable = read_log(log_dir)
    current, _ = logged_window(log_dir, window, settings.drift_min_records, records)

    features = compare(reference, current, settings)
    drifted = [name for name, verdict in features.items() if verdict.drifted]
    share = len(drifted) / len(features)
    column = _served_column()
    prediction = _numeric(column, reference[column], current[column], settings.drift_psi_threshold)
    performance = live_performance(current, labels, manifest, settings) if labels else None

    breaches = []
    if share >= settings.drift_share_threshold:
        breaches.append(
            f"{len(drifted)} of {len(features)} features drifted ({', '.join(drifted)}), "
            f"at or over the share {settings.drift_share_threshold}"
        )
    if prediction.drifted:
        breaches.append(
            f"the predictions drifted (PSI {prediction.score:.3f} > {prediction.threshold})"
        )
    if performance and performance["decayed"]:
        breaches.append(
            f"{performance['primary_metric']} fell by {performance['decay']:.1%} against the "
            f"holdout, more than {performance['threshold']:.0%}"
        )
    now = datetime.now(UTC)
    result = {
        "time": now.isoformat(timespec="seconds"),
        "timestamp": now.timestamp(),
        "model": {"name": manifest.get("name"), "version": manifest.get("version")},
        "log_dir": str(log_dir),
        "window": len(current),
        "unreadable_lines": unreadable,
        "first_record": current["time"].iloc[0],
        "last_record": current["time"].iloc[-1],
        "served_versions": {
            str(k): int(v) for k, v in current["model_version"].value_counts().items()
        },
        "reference_rows": len(reference),
        "features": {name: asdict(verdict) for name, verdict in features.items()},
        "share_drifted": share,
        "share_threshold": settings.drift_share_threshold,
        "dataset_drift": share >= settings.drift_share_threshold,
        "prediction": asdict(prediction),
        "performance": performance,
        "breaches": breaches,
        "healthy": not breaches,
    }
    output_dir = output_dir or settings.monitoring_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    _write_atomically(output_dir / "drift.html", render_html(result, reference, current))
    _write_atomically(output_dir / f"drift-{stamp}.json", json.dumps(result, indent=2))
    _write_atomically(output_dir / "drift.json", json.dumps(result, indent=2))
    result["rollout"] = compare_variants(records, window, labels, settings)
    if result["rollout"] is not None:
        _write_atomically(output_dir / "rollout.json", json.dumps(result["rollout"], indent=2))
    return result


# ------------------------------------------------------------------ the rollout comparison
def _variant_figures(
    frame: pd.DataFrame, labels: Path | None, settings: Settings
) -> dict[str, Any]:
    """What one variant did on the logged traffic; its live metrics when enough labels came."""
    column = frame[_served_column()].astype(float)
    latency = frame["latency_ms"].astype(float)
    figures: dict[str, Any] = {
        "version": str(frame["model_version"].mode().iloc[0]) if len(frame) else None,
        "records": len(frame),
        "mean_prediction": float(column.mean()) if len(frame) else None,
        "p50_latency_ms": float(latency.quantile(0.5)) if len(frame) else None,
        "p99_latency_ms": float(latency.quantile(0.99)) if len(frame) else None,
        "labelled": 0,
        "live": None,
    }
    if labels is not None and len(frame):
        joined = _labelled(frame, labels)
        figures["labelled"] = len(joined)
        if len(joined) >= settings.rollout_min_records:
            try:
                live = evaluate.score(
                    joined[CONTRACT.target.name], joined["prediction"], joined.get("probability")
                )
                figures["live"] = {name: float(value) for name, value in live.items()}
            except ValueError:  # e.g. ROC AUC of labels holding one class only
                figures["live"] = None
    return figures


def _agreement(champion: pd.DataFrame, challenger: pd.DataFrame, tolerance: float):
    """Share of shadowed records on which both variants agree (None without such pairs)."""
    pairs = champion.merge(challenger, on=["request_id", "row"], suffixes=("_a", "_b"))
    if pairs.empty:
        return None
    first, second = pairs["prediction_a"], pairs["prediction_b"]
    if CONTRACT.target.kind == "classification":
        agree = first == second
    else:
        agree = (second.astype(float) - first.astype(float)).abs() <= tolerance * first.abs()
    return {"pairs": len(pairs), "rate": float(agree.mean())}


def compare_variants(
    records: list[dict[str, Any]], window: int, labels: Path | None, settings: Settings
) -> dict[str, Any] | None:
    """Champion against challenger on the last `window` records of each; None when the log
    holds no challenger prediction."""
    by_variant = {
        variant: _frame([r for r in records if r.get("variant", CHAMPION) == variant][-window:])
        for variant in (CHAMPION, CHALLENGER)
    }
    if by_variant[CHALLENGER].empty:
        return None
    figures = {v: _variant_figures(f, labels, settings) for v, f in by_variant.items()}
    column = _served_column()
    reasons = [
        f"only {figures[v]['records']} {v} records in the log; {settings.rollout_min_records} "
        "are needed (rollout_min_records)"
        for v in (CHAMPION, CHALLENGER)
        if figures[v]["records"] < settings.rollout_min_records
    ]
    agreement = distribution = None
    primary = evaluate.PRIMARY_METRIC
    if not reasons:
        agreement = _agreement(*by_variant.values(), settings.rollout_agreement_tolerance)
        distribution = asdict(
            _numeric(
                column,
                by_variant[CHAMPION][column],
                by_variant[CHALLENGER][column],
                settings.drift_psi_threshold,
            )
        )
        lives = [figures[v]["live"] for v in (CHAMPION, CHALLENGER)]
        if all(lives):
            champion, challenger = (live[primary] for live in lives)
            lower_is_better = primary in evaluate.LOWER_IS_BETTER
            loss = challenger - champion if lower_is_better else champion - challenger
            if loss > settings.rollout_max_metric_loss:
                reasons.append(
                    f"live {primary} of the challenger {challenger:.4f} is worse than the "
                    f"champion's {champion:.4f} by {loss:.4f}, more than "
                    f"{settings.rollout_max_metric_loss} (rollout_max_metric_loss)"
                )
        else:
            if distribution["drifted"]:
                reasons.append(
                    f"without labels, the challenger's predictions must look like the "
                    f"champion's: their PSI {distribution['score']:.3f} exceeds "
                    f"{distribution['threshold']}; send labels (--labels) to judge on metrics"
                )
            if agreement is not None and agreement["rate"] < settings.rollout_min_agreement:
                reasons.append(
                    f"without labels, the challenger must agree with the champion: it does on "
                    f"{agreement['rate']:.1%} of {agreement['pairs']} shadowed records, under "
                    f"{settings.rollout_min_agreement:.0%} (rollout_min_agreement)"
                )
    version = figures[CHALLENGER]["version"]
    summary = (
        f"the challenger (version {version}) may be promoted: run `promote`, the gate that "
        "also judges it on the holdout"
        if not reasons
        else f"the challenger (version {version}) should not be promoted yet"
    )
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "primary_metric": primary,
        "variants": figures,
        "agreement": agreement,
        "distribution": distribution,
        "verdict": {"may_promote": not reasons, "reasons": reasons, "summary": summary},
    }


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- the report
STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }
.banner { padding: 1rem 1.4rem; border-radius: 6px; color: white; }
.healthy { background: #2e7d32; } .alert { background: #c62828; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: left; }
tr.drift td { background: #fdecea; }
.plots { display: flex; flex-wrap: wrap; gap: 0.5rem; } figure { margin: 0; }
</style>"""


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _plot(name: str, reference: pd.Series, current: pd.Series, verdict: dict[str, Any]) -> str:
    figure, axes = plt.subplots(figsize=(4.6, 2.8))
    colours = {"reference": "#4c72b0", "current": "#dd8452"}
    if verdict["kind"] == "categorical":
        ref = reference.astype(object).fillna(MISSING).value_counts(normalize=True)
        cur = current.astype(object).fillna(MISSING).value_counts(normalize=True)
        shares = pd.DataFrame({"reference": ref, "current": cur}).fillna(0)
        shares.plot.bar(ax=axes, color=colours, rot=30, width=0.8)
        axes.set_ylabel("share of records")
    else:
        ref, cur = reference.dropna().astype(float), current.dropna().astype(float)
        edges = np.histogram_bin_edges(pd.concat([ref, cur]), bins=30)
        for label, values in (("reference", ref), ("current", cur)):
            axes.hist(
                values, bins=edges, density=True, alpha=0.55, label=label, color=colours[label]
            )
        axes.set_ylabel("density")
        axes.legend()
    flag = "DRIFT" if verdict["drifted"] else "stable"
    axes.set_title(f"{name}: {verdict['statistic']} {verdict['score']:.3f} ({flag})", fontsize=10)
    return _png(figure)


def _row(verdict: dict[str, Any]) -> str:
    p_value = "n/a" if verdict["p_value"] is None else f"{verdict['p_value']:.3g}"
    state = "drift" if verdict["drifted"] else "ok"
    return (
        f"<tr class='{state}'><td>{html.escape(verdict['name'])}</td><td>{verdict['kind']}</td>"
        f"<td>{verdict['statistic']}</td><td>{verdict['score']:.4f}</td>"
        f"<td>{verdict['threshold']}</td><td>{verdict['test']} p = {p_value}</td>"
        f"<td>{state}</td></tr>"
    )


def render_html(result: dict[str, Any], reference: pd.DataFrame, current: pd.DataFrame) -> str:
    """A self-contained page (plots inlined as PNG): verdict, tables, one plot per column."""
    verdicts = [*result["features"].values(), result["prediction"]]
    plots = "".join(
        f"<figure><img alt='{html.escape(v['name'])} distribution' src='data:image/png;base64,"
        f"{_plot(v['name'], reference[v['name']], current[v['name']], v)}'></figure>"
        for v in verdicts
    )
    status = "healthy" if result["healthy"] else "alert"
    headline = "No drift beyond the thresholds" if result["healthy"] else "Thresholds breached"
    breaches = "".join(f"<li>{html.escape(b)}</li>" for b in result["breaches"])
    performance = ""
    if result["performance"]:
        perf = result["performance"]
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in perf["live"].items()
        )
        decay = "n/a" if perf["decay"] is None else f"{perf['decay']:.1%}"
        holdout = "n/a" if perf["reference"] is None else f"{perf['reference']:.4f}"
        performance = (
            f"<h2>Performance on {perf['labelled']} labelled records</h2>"
            f"<p>{perf['primary_metric']}: holdout {holdout}, live "
            f"{perf['live'][perf['primary_metric']]:.4f}, decay {decay} "
            f"(limit {perf['threshold']:.0%})</p><table><tr><th>metric</th><th>live</th></tr>"
            f"{rows}</table>"
        )
    model = result["model"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift report: {html.escape(str(model["name"]))} version {model["version"]}</title>
{STYLE}</head><body>
<h1>Drift report: {html.escape(str(model["name"]))} version {model["version"]}</h1>
<div class="banner {status}" id="verdict"><strong>{headline}</strong>:
{result["share_drifted"]:.0%} of features drifted (alert at {result["share_threshold"]:.0%}).
<ul>{breaches}</ul></div>
<p>Window: the last {result["window"]} logged records ({html.escape(str(result["first_record"]))}
to {html.escape(str(result["last_record"]))}) against {result["reference_rows"]} training rows.
Served versions: {html.escape(json.dumps(result["served_versions"]))}.
Run at {result["time"]}.</p>
<h2>Columns</h2>
<table><tr><th>column</th><th>type</th><th>statistic</th><th>score</th><th>threshold</th>
<th>test</th><th>verdict</th></tr>{"".join(_row(v) for v in verdicts)}</table>
{performance}
<h2>Distributions: reference (training) vs current (logged)</h2>
<div class="plots">{plots}</div>
</body></html>
"""


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What the command prints: one line per drifted column, then the verdict."""
    lines = [
        f"window of {result['window']} records vs {result['reference_rows']} reference rows; "
        f"{result['share_drifted']:.0%} of features drifted"
    ]
    for verdict in [*result["features"].values(), result["prediction"]]:
        mark = "DRIFT" if verdict["drifted"] else "ok"
        lines.append(
            f"  {verdict['name']:<24} {verdict['statistic']:<15} {verdict['score']:8.4f}  {mark}"
        )
    lines += [f"breach: {breach}" for breach in result["breaches"]]
    comparison = result.get("rollout")
    if comparison:
        for variant, figures in comparison["variants"].items():
            live = (figures["live"] or {}).get(comparison["primary_metric"])
            lines.append(
                f"rollout: {variant:<10} version {figures['version']}: {figures['records']} "
                f"records, mean prediction {figures['mean_prediction']:.4f}"
                + (f", live {comparison['primary_metric']} {live:.4f}" if live is not None else "")
            )
        if comparison["agreement"]:
            agreement = comparison["agreement"]
            lines.append(
                f"rollout: agreement {agreement['rate']:.1%} on {agreement['pairs']} shadowed "
                "records"
            )
        lines.append(f"rollout: {comparison['verdict']['summary']}")
        lines += [f"rollout: {reason}" for reason in comparison["verdict"]["reasons"]]
    return lines
