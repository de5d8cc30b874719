"""The Spark session of a scoring job, and reading its input.

Both outputs are written, replacing any previous ones, through Spark's
Hadoop `FileOutputCommitter` with algorithm version 1, pinned below (version 2 moves each
task's files into the destination as soon as the task ends, so a failed job would leave part
files there). Tasks write under `<output>/_temporary`; only the job commit moves their files
into place, and writes `_SUCCESS` last. A job that fails or is killed leaves no part file in
`<output>` and no `_SUCCESS`. On object stores (S3), whose renames are copies, configure one
of the S3A committers instead (see the README).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING

from ...errors import DataError
from ...settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Always: a failed job must leave nothing in the destination (see the module docstring).
COMMIT_CONF = {
    "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "1",
    "spark.sql.sources.partitionOverwriteMode": "static",
}
# Local mode only: stay on this machine's loopback interface.
LOCAL_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
PANDAS_3_WARNING = "PySpark does not yet fully support pandas >= 3"


def submitted() -> bool:
    """True when spark-submit (or the pyspark shell) started this process and owns the master."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(settings: Settings) -> SparkSession:
    """This process's SparkSession: the one spark-submit configured, else one on `spark_master`.

    In local mode the Python workers run this interpreter (`PYSPARK_PYTHON`), so they see the
    project's packages, and the driver binds to 127.0.0.1. `spark_conf` is applied last.
    """
    warnings.filterwarnings("ignore", PANDAS_3_WARNING, FutureWarning)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(settings.spark_app_name)
    conf = dict(COMMIT_CONF)
    if not submitted():
        builder = builder.master(settings.spark_master)
        if settings.spark_master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            conf |= LOCAL_CONF
    for key, value in (conf | settings.spark_conf).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.spark_log_level)
    return session


def read_input(spark: SparkSession, source: str) -> DataFrame:
    """A CSV file or folder (by its `.csv` suffix; every column read as text) or Parquet."""
    from pyspark.errors import AnalysisException

    kind = "CSV" if source.rstrip("/").lower().endswith(".csv") else "Parquet"
    try:
        if kind == "CSV":
            return spark.read.option("header", True).option("mode", "PERMISSIVE").csv(source)
        return spark.read.parquet(source)
    except AnalysisException as error:
        reason = str(error).splitlines()[0]
        raise DataError(f"{source}: cannot be read as {kind} ({reason})") from None
