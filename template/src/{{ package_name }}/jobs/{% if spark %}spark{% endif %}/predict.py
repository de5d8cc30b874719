"""The Spark scoring job: validate and score a file with Spark, write the scored rows and the
rows set aside, each committed as a whole (see `session` for the commit protocol)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...contract import CONTRACT
from ...errors import DataError
from ...registry.artifact import load_serving_model
from ...settings import Settings
from .checks import check_structure, contract_columns
from .scoring import export_folder, prediction_type, scoring_udf
from .session import read_input, spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REASON = "rejection_reason"
REJECTED_SUFFIX = "_rejected"


@dataclass(frozen=True)
class SparkResult:
    """What a Spark scoring job wrote: committed row counts and where."""

    scored: int
    rejected: int
    output: str
    rejected_output: str
    backend: str


def rejected_path(output: str) -> str:
    """Where the rows set aside go: beside the output, `<output>_rejected`."""
    return output.rstrip("/") + REJECTED_SUFFIX


def _same_path(first: str, second: str) -> bool:
    def normal(path: str) -> str:
        path = path.rstrip("/").removeprefix("file://")
        return path if "://" in path else str(Path(path).resolve())

    return normal(first) == normal(second)


def predict_spark(
    settings: Settings,
    source: str,
    output: str,
    model_uri: str | None = None,
    partition_by: Sequence[str] = (),
    spark: SparkSession | None = None,
) -> SparkResult:
    """Validate and score `source` with Spark; write Parquet to `output`, set-aside rows beside it.

    Both folders are replaced, and appear only once their job has committed.
    """
    rejected_output = rejected_path(output)
    for target in (output, rejected_output):
        if _same_path(source, target):
            raise DataError(f"{target}: the output would replace the input {source}")
    spark = spark or spark_session(settings)
    frame = read_input(spark, source)
    check_structure(frame, source, typed=not source.rstrip("/").lower().endswith(".csv"))
    kept = [name for name in frame.columns if name not in (CONTRACT.target.name, REASON)]
    unknown = [name for name in partition_by if name not in kept]
    if unknown:
        raise DataError(f"cannot partition by {unknown}: not columns of {source} ({kept})")

    with tempfile.TemporaryDirectory(prefix="spark-predict-") as scratch:
        folder = export_folder(model_uri or settings.model_source, settings, Path(scratch))
        backend = load_serving_model(folder, settings.spark_backend).backend
        score = scoring_udf(spark, folder, backend)

    values, reason = contract_columns(frame)
    checked = frame.withColumn(REASON, reason)
    rejected = checked.where(checked[REASON] != "").drop(CONTRACT.target.name)
    rejected.write.mode("overwrite").parquet(rejected_output)

    valid = checked.where(checked[REASON] == "")
    typed = valid.select(*[values[name].alias(name) if name in values else name for name in kept])
    scored = typed.withColumn("_scored", score(*[typed[name] for name in CONTRACT.feature_names]))
    outputs = [name for name in prediction_type().fieldNames()]
    scored = scored.select(*kept, *[scored["_scored"][name].alias(name) for name in outputs])
    writer = scored.write.mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(output)

    return SparkResult(
        scored=spark.read.parquet(output).count(),
        rejected=spark.read.parquet(rejected_output).count(),
        output=output,
        rejected_output=rejected_output,
        backend=backend,
    )
