"""Re-scoring: a saved model (the champion by default) on a labelled file, reports rewritten."""

from pathlib import Path

from ..data.ingest import load_table
from ..data.validate import validate
from ..modeling.evaluate import compute_metrics, find, make_figures, write_report
from ..modeling.fit import labelled, labelled_split
from ..registry.tracking import load_model
from ..settings import Settings


def evaluate_saved_model(
    settings: Settings, data_path: Path | None = None, model_uri: str | None = None
) -> dict[str, float]:
    """Score a saved model on a labelled file and write the report.

    Without a file, the holdout split of the training data is rebuilt (same seed and size),
    so the figures match those of the training run.
    """
    model = load_model(model_uri or settings.model_source, settings)
    if data_path is None:
        _, frame = labelled_split(settings)
    else:
        frame = labelled(validate(load_table(data_path)))
    metrics = compute_metrics(model.pipeline, frame)
    findings = find(model.pipeline, frame, settings.seed, settings.segment_min_rows)
    figures = make_figures(model.pipeline, frame, findings)
    write_report(metrics, figures, settings.reports_dir, findings)
    return metrics
