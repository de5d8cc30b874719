"""Scoring in a pandas UDF, with the training export.

Rows are scored in an iterator pandas UDF that runs the training export through
`registry.artifact.ServingModel`: the ONNX graph the service runs (or, with
`spark_backend = "sklearn"`, the exact scikit-learn pipeline), not MLflow's
`mlflow.pyfunc.spark_udf`, because
- executors need only the project's runtime dependencies (numpy, onnxruntime, pandas), not
  MLflow, a training dependency that takes seconds to import and, with its `env_manager`,
  rebuilds an environment per executor;
- the export is shipped once to every executor as a broadcast variable and loaded once per
  Python worker, whatever the cluster manager and without a shared file system or a tracking
  server reachable from the executors;
- one call yields the label and the probability, and only the feature columns cross into
  Python: identifiers and other columns stay in the JVM;
- ONNX Runtime scores a batch several times faster than the pipeline behind the pyfunc.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...contract import CONTRACT
from ...errors import ModelLoadError
from ...registry.artifact import (
    MANIFEST,
    ONNX_FILE,
    PIPELINE_FILE,
    REGISTRY_SCHEMES,
    headline,
    load_serving_model,
)
from ...settings import Settings
from .session import PANDAS_3_WARNING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SHIPPED_FILES = (MANIFEST, ONNX_FILE, PIPELINE_FILE)  # the drift reference stays behind


def prediction_type():
    from pyspark.sql import types as T

    if CONTRACT.target.kind == "classification":
        return T.StructType(
            [
                T.StructField(
                    "prediction", T.StringType() if CONTRACT.target.text_labels else T.LongType()
                ),
                T.StructField("probability", T.DoubleType()),
            ]
        )
    return T.StructType([T.StructField("prediction", T.DoubleType())])


_LOADED: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def _model_on_worker(digest: str, files: dict[str, bytes], backend: str):
    """The shipped export, loaded once per Python worker (Spark reuses workers across tasks)."""
    with _LOCK:
        if (digest, backend) not in _LOADED:
            folder = Path(tempfile.mkdtemp(prefix="spark-model-"))
            try:
                for name, content in files.items():
                    (folder / name).write_bytes(content)
                _LOADED[digest, backend] = load_serving_model(folder, backend)
            finally:  # both backends hold the model in memory once loaded
                shutil.rmtree(folder, ignore_errors=True)
        return _LOADED[digest, backend]


def scoring_udf(spark: SparkSession, folder: Path, backend: str):
    """A pandas UDF of the contract's features (in contract order) -> prediction[, probability]."""
    from pyspark.sql.functions import pandas_udf

    files = {
        name: (folder / name).read_bytes() for name in SHIPPED_FILES if (folder / name).is_file()
    }
    digest = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()
    shipped = spark.sparkContext.broadcast(files)
    numeric, categorical = CONTRACT.numeric, CONTRACT.categorical

    def score(batches: Iterator[tuple[pd.Series, ...]]) -> Iterator[pd.DataFrame]:
        warnings.filterwarnings("ignore", PANDAS_3_WARNING, FutureWarning)
        model = _model_on_worker(digest, shipped.value, backend)
        dtype = np.float32 if model.backend == "onnx" else np.float64
        for batch in batches:
            series = dict(zip(numeric + categorical, batch, strict=True))
            columns = {
                name: series[name].to_numpy(dtype=dtype, na_value=np.nan).reshape(-1, 1)
                for name in numeric
            }
            for name in categorical:
                texts = series[name].astype(object).where(series[name].notna(), "")
                columns[name] = texts.to_numpy(dtype=object).reshape(-1, 1)
            predictions, probabilities = model.predict(columns)
            result = pd.DataFrame({"prediction": predictions})
            if probabilities is not None:  # the positive (or predicted) class's
                result["probability"] = headline(probabilities)
            yield result

    return pandas_udf(score, prediction_type())


def export_folder(model_uri: str, settings: Settings, scratch: Path) -> Path:
    """The serving export behind `model_uri`: a folder, or pulled from the registry."""
    if model_uri.startswith(REGISTRY_SCHEMES):
        from ...registry.tracking import pull

        return pull(model_uri, settings, scratch / "model")
    folder = Path(model_uri)
    if not (folder / MANIFEST).is_file():
        raise ModelLoadError(
            f"no model at '{model_uri}': expected an exported model folder (run the train "
            "command first) or a models:/NAME@ALIAS URI"
        )
    return folder
