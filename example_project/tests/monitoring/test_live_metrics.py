"""Live metrics: logged predictions joined with their labels, against the holdout's."""

import pandas as pd

from customer_churn.contract import CONTRACT
from customer_churn.monitoring.drift import run


def test_labels_add_live_metrics_and_decay(windows, settings, tmp_path):
    folder, rows = windows
    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "request_id": [f"req-{i}" for i in range(len(rows))],
            CONTRACT.target.name: rows[CONTRACT.target.name],
        }
    ).to_csv(labels, index=False)
    # The test model learns from 800 rows and is scored on a holdout of 160: that metric is
    # itself uncertain by some 15% (a regressor's RMSE more than a classifier's ROC AUC), so
    # clean traffic is judged against a looser limit than the 10% a project starts with.
    judged = settings.model_copy(update={"drift_max_metric_decay": 0.3})
    clean = run(judged, log_dir=folder / "clean", labels=labels, output_dir=tmp_path)["performance"]
    assert clean["labelled"] == 600 and not clean["decayed"], clean
    worse = run(judged, log_dir=folder / "drifted", labels=labels, output_dir=tmp_path)[
        "performance"
    ]
    assert worse["decay"] > clean["decay"], worse
