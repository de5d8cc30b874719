"""Batch scoring on Apache Spark: the model and feature contract of `jobs/predict.py`, on one
machine (local mode) or a cluster. `predict.predict_spark` is the job; `checks` turns the
contract into Spark SQL, `scoring` runs the export in a pandas UDF, `session` starts Spark."""
