"""The model card: what the model is for, how it was trained and how well it does, in Markdown.

Edit INTENDED_USE and LIMITATIONS: they are the part of the card only people can write.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .contract import CONTRACT

if TYPE_CHECKING:
    from .train import Fitted

INTENDED_USE = (
    "Ranks or scores records like those described by the feature contract, to support a "
    "person's decision. Not for decisions about individuals without human review."
)
LIMITATIONS = (
    "Trained on the bundled synthetic data unless replaced: its figures say nothing about real "
    "customers. Performance holds only for data like the training data; watch for drift."
)


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


def render_model_card(
    fitted: Fitted, metadata: dict[str, Any], receipt: dict[str, Any], plots: list[Path]
) -> str:
    """The card's Markdown text."""
    metrics = sorted(fitted.metrics.items())
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
        "| metric | value |",
        "|---|---|",
        *[f"| {name} | {value:.4f} |" for name, value in metrics],
        "",
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
            if key not in ("model_params", "packages")
        ],
        *[f"| {dist} | `{ver}` |" for dist, ver in receipt["packages"].items()],
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    path: Path, fitted: Fitted, metadata: dict, receipt: dict, plots: list[Path]
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".md.tmp")
    temporary.write_text(render_model_card(fitted, metadata, receipt, plots))
    temporary.replace(path)
    return path
