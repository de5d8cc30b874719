"""The drift report: a self-contained HTML page a person reads, and the JSON files beside it.

Writes `drift.json` (the service exposes it as Prometheus gauges), `drift.html` and a dated
copy of the drift JSON into the monitoring folder, each replaced atomically so a reader never
sees half a file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..data.files import write_text
from .distributions import MISSING

STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }
.banner { padding: 1rem 1.4rem; border-radius: 6px; color: white; }
.healthy { background: #2e7d32; } .alert { background: #c62828; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: left; }
tr.drift td { background: #fdecea; }
.plots { display: flex; flex-wrap: wrap; gap: 0.5rem; } figure { margin: 0; }
</style>"""


def write_drift_report(
    output_dir: Path,
    result: dict[str, Any],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    now: datetime,
) -> None:
    """Write the page, a dated copy of the result and `drift.json` into `output_dir`."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")  # write_text makes the folder
    write_text(output_dir / "drift.html", render_html(result, reference, current))
    text = json.dumps(result, indent=2)
    write_text(output_dir / f"drift-{stamp}.json", text)
    write_text(output_dir / "drift.json", text)


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


def _performance(perf: dict[str, Any] | None) -> str:
    """The section on live metrics; empty without labels."""
    if not perf:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in perf["live"].items()
    )
    decay = "n/a" if perf["decay"] is None else f"{perf['decay']:.1%}"
    holdout = "n/a" if perf["reference"] is None else f"{perf['reference']:.4f}"
    return (
        f"<h2>Performance on {perf['labelled']} labelled records</h2>"
        f"<p>{perf['primary_metric']}: holdout {holdout}, live "
        f"{perf['live'][perf['primary_metric']]:.4f}, decay {decay} "
        f"(limit {perf['threshold']:.0%})</p><table><tr><th>metric</th><th>live</th></tr>"
        f"{rows}</table>"
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
{_performance(result["performance"])}
<h2>Distributions: reference (training) vs current (logged)</h2>
<div class="plots">{plots}</div>
</body></html>
"""
