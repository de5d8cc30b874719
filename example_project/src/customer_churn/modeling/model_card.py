"""The model card: what the model is for, how it was trained and how well it does, in Markdown.

The prose only people can write (INTENDED_USE, LIMITATIONS) lives in `card.py`, yours to edit.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..card import INTENDED_USE, LIMITATIONS
from ..contract import CONTRACT
from .baseline import PREFIX, SKILL
from .evaluate import LOWER_IS_BETTER, PRIMARY_METRIC
from .segments import GAP_METRIC

if TYPE_CHECKING:
    from .evaluate import Findings
    from .fit import Fitted


def _data_summary(fitted: Fitted) -> list[str]:
    frame = fitted.train_frame
    target = frame[CONTRACT.target.name]
    lines = [
        f"- Rows: {len(frame)} for training, {len(fitted.test_frame)} for the holdout",
    ]
    if CONTRACT.target.kind == "classification":
        shares = target.value_counts(normalize=True).sort_index()
        lines.append(
            "- Classes: " + ", ".join(f"{label}: {share:.1%}" for label, share in shares.items())
        )
    else:
        lines.append(
            f"- Target: mean {target.mean():.3f}, median {target.median():.3f}, "
            f"range {target.min():.3f} to {target.max():.3f}"
        )
    missing = frame[CONTRACT.feature_names].isna().mean()
    gaps = [f"{name} {share:.1%}" for name, share in missing.items() if share > 0]
    lines.append("- Missing values: " + (", ".join(gaps) if gaps else "none"))
    return lines


def _explanations(findings: Findings) -> list[str]:
    contributions = findings.contributions
    return [
        "What moves the model's answers, per contract feature: the drop in "
        f"{PRIMARY_METRIC} when the feature is shuffled "
        "(permutation importance, holdout), and the average size of its SHAP contribution to "
        f"one answer (in {findings.output_space}). The service explains a single answer with "
        "`POST /predict?explain=true`.",
        "",
        "| feature | permutation importance | mean abs. SHAP contribution |",
        "|---|---|---|",
        *[
            f"| {name} | {findings.importance[name]:.4f} | {contributions[name]:.4f} |"
            for name in findings.importance.sort_values(ascending=False).index
        ],
    ]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _segments(findings: Findings) -> list[str]:
    report = findings.segments
    if report.table.empty:
        return ["The contract marks no feature as a segment or protected attribute."]
    protected = set(CONTRACT.protected)
    lines = [
        f"Holdout metrics per value of each segment feature; the gap is the spread of "
        f"{GAP_METRIC} between values with at least {report.min_rows} rows."
        + (f" Protected attributes: {', '.join(sorted(protected))}." if protected else ""),
        "",
    ]
    largest = report.largest
    lines.append(f"Largest gap: {largest.describe()}." if largest else "No gap could be measured.")
    columns = [c for c in report.table.columns if c != "feature"]
    for name, table in report.table.groupby("feature", sort=False):
        gap = report.gaps.get(name)
        title = f"### {name}" + (" (protected)" if name in protected else "")
        measured = f"gap {gap.gap:.4f}" if gap else "gap not measured (too few rows)"
        lines += ["", title, "", f"{GAP_METRIC} {measured}.", ""]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in table[columns].itertuples(index=False):
            cells = [_cell(value) for value in row]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def tuning_cell(tuned: dict[str, Any] | None) -> str:
    """Where the hyperparameters came from: model.py's PARAMS, or the trial `tune` chose."""
    if not tuned:
        return "model.py's `PARAMS`"
    return (
        f"tuned: trial {tuned['trial']} of {tuned['trials']} in study `{tuned['study']}` "
        f"({tuned['metric']} {tuned['value']:.4f}; tune run `{tuned['tune_run_id']}`)"
    )


def _profile(profile: dict[str, Any]) -> list[str]:
    return [
        f"The serving export as the service runs it ({profile['backend']} backend), measured "
        "in a fresh process after training.",
        "",
        "| what | value |",
        "|---|---|",
        f"| one record: p50 / p99 | {profile['single']['p50_ms']:.3f} ms / "
        f"{profile['single']['p99_ms']:.3f} ms ({profile['single']['runs']} calls) |",
        f"| {profile['batch']['size']} records: p50 / p99 | {profile['batch']['p50_ms']:.3f} ms "
        f"/ {profile['batch']['p99_ms']:.3f} ms ({profile['batch']['runs']} calls) |",
        f"| artifact on disk | {profile['artifact_mb']:.3f} MB ({profile['artifact_file']}); "
        f"whole export {profile['export_mb']:.3f} MB |",
        f"| memory when loaded | {profile['memory_mb']:.1f} MB (process RSS "
        f"{profile['rss_before_load_mb']:.1f} MB before, {profile['rss_after_load_mb']:.1f} MB "
        "after) |",
    ]


def _metrics(metrics: dict[str, float]) -> list[str]:
    """The model's figures beside the baseline's, where it has one, and the lift over it."""
    lines = [
        f"The baseline ignores the features (it answers the training rows' "
        f"{'class shares' if CONTRACT.target.kind == 'classification' else 'mean'}). On the "
        f"holdout's {PRIMARY_METRIC}, the model makes {metrics[SKILL]:.1%} of the possible "
        "improvement over it (its skill over the baseline). The lift is how much better the "
        "model does on each metric (positive: better, whichever way the metric points).",
        "",
        "| metric | model | baseline | lift |",
        "|---|--:|--:|--:|",
    ]
    for name, value in sorted(metrics.items()):
        base = metrics.get(f"{PREFIX}{name}")
        if name.startswith(PREFIX) or name == SKILL:
            continue
        if base is None:
            lines.append(f"| {name} | {value:.4f} | | |")
            continue
        metric = name.removeprefix("test_").removeprefix("cv_").removesuffix("_mean")
        lift = base - value if metric in LOWER_IS_BETTER else value - base
        lines.append(f"| {name} | {value:.4f} | {base:.4f} | {lift:+.4f} |")
    return lines


def render_model_card(
    fitted: Fitted,
    metadata: dict[str, Any],
    receipt: dict[str, Any],
    plots: list[Path],
    findings: Findings | None = None,
    profile: dict[str, Any] | None = None,
) -> str:
    """The card's Markdown text; `findings` and `profile` add their sections."""
    lines = [
        f"# Model card: {metadata['name']} version {metadata['version']}",
        "",
        f"Run `{metadata['run_id']}`, trained {metadata['trained_at']}, "
        f"estimator `{receipt['estimator']}`, predicting `{CONTRACT.target.name}` "
        f"({CONTRACT.target.description}).",
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Limitations",
        "",
        LIMITATIONS,
        "",
        "## Data",
        "",
        *_data_summary(fitted),
        "",
        "## Metrics",
        "",
        *_metrics(fitted.metrics),
        "",
        *(["## Explanations", "", *_explanations(findings), ""] if findings else []),
        *(["## Segments", "", *_segments(findings), ""] if findings else []),
        *(["## Production profile", "", *_profile(profile), ""] if profile else []),
        "## Plots",
        "",
        *[f"![{path.stem}]({path.name})" for path in plots if path.suffix == ".png"],
        "",
        "## Features",
        "",
        *[f"- `{feature.name}`: {feature.description}" for feature in CONTRACT.features],
        "",
        "## Receipt",
        "",
        "| what | value |",
        "|---|---|",
        *[
            f"| {key} | `{value}` |"
            for key, value in receipt.items()
            if key not in ("model_params", "packages", "tuned")
        ],
        f"| hyperparameters | {tuning_cell(receipt.get('tuned'))} |",
        *[f"| {dist} | `{ver}` |" for dist, ver in receipt["packages"].items()],
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    path: Path,
    fitted: Fitted,
    metadata: dict,
    receipt: dict,
    plots: list[Path],
    findings: Findings | None = None,
    profile: dict[str, Any] | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".md.tmp")
    temporary.write_text(render_model_card(fitted, metadata, receipt, plots, findings, profile))
    temporary.replace(path)
    return path
