"""The feature contract as Spark SQL expressions, evaluated in the JVM.

- The file is refused (`DataError`, before any job runs) when a contract column is missing or,
  in Parquet, which declares types, when a column has a type that cannot hold its feature
  (text for a number, a number for a category).
- A row is set aside when one of its values breaks the contract: outside the range, not a
  whole number, an unknown category, missing where not allowed, or (CSV, untyped) text that is
  not a number. Such rows are never scored: they are written to `<output>_rejected` with a
  `rejection_reason` column, and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...contract import CONTRACT
from ...errors import DataError
from ...fields import Categorical, Numeric

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


def _type_problem(feature: Numeric | Categorical, spark_type: str) -> str | None:
    if isinstance(feature, Numeric) and not spark_type.startswith((*NUMERIC_TYPES, "string")):
        return f"- column '{feature.name}' is of type {spark_type}; the contract wants numbers"
    if isinstance(feature, Numeric) and spark_type == "string":
        return f"- column '{feature.name}' holds text (string); the contract wants numbers"
    if isinstance(feature, Categorical) and spark_type != "string":
        return f"- column '{feature.name}' is of type {spark_type}; the contract wants text"
    return None


def check_structure(frame: DataFrame, source: str, typed: bool) -> None:
    """Refuse a file whose columns cannot follow the contract; `typed`: the file declares types."""
    types = {field.name: field.dataType.simpleString() for field in frame.schema.fields}
    problems = []
    for feature in CONTRACT.features:
        if feature.name not in types:
            problems.append(f"- missing column '{feature.name}'")
        elif typed and (problem := _type_problem(feature, types[feature.name])):
            problems.append(problem)
    if problems:
        raise DataError(f"{source}: the data breaks the feature contract:\n" + "\n".join(problems))


def _number(value: float) -> str:
    return f"{value:g}"


def _categorical_reasons(feature: Categorical, raw: Column, missing: Column) -> list[Column]:
    from pyspark.sql import functions as F

    allowed = ", ".join(feature.categories)
    unknown = F.concat(
        F.lit(f"{feature.name}: unknown category '"), raw, F.lit(f"' (expected one of {allowed})")
    )
    return [F.when(~missing & ~raw.isin(list(feature.categories)), unknown)]


def _numeric_reasons(feature: Numeric, raw: Column, value: Column, not_a_number: Column):
    """Why a numeric value breaks the contract: not a number, out of range, not whole."""
    from pyspark.sql import functions as F

    shown = raw.cast("string")

    def reason(condition: Column, text: str) -> Column:
        return F.when(condition, F.concat(F.lit(f"{feature.name}: "), shown, F.lit(text)))

    reasons = [
        F.when(not_a_number, F.concat(F.lit(f"{feature.name}: not a number '"), shown, F.lit("'")))
    ]
    if feature.minimum is not None:
        reasons.append(reason(value < feature.minimum, f" is below {_number(feature.minimum)}"))
    if feature.maximum is not None:
        reasons.append(reason(value > feature.maximum, f" is above {_number(feature.maximum)}"))
    if feature.integer:
        reasons.append(reason(value != F.floor(value), " is not a whole number"))
    return reasons


def contract_columns(frame: DataFrame) -> tuple[dict[str, Column], Column]:
    """The contract's columns cast to their types, and a column of reasons ("" when valid)."""
    from pyspark.sql import functions as F

    values: dict[str, Column] = {}
    reasons: list[Column] = []
    for feature in CONTRACT.features:
        raw = F.col(feature.name)
        missing = raw.isNull()
        if isinstance(feature, Categorical):
            value = raw
            reasons += _categorical_reasons(feature, raw, missing)
        else:
            parsed = raw.try_cast("double")
            not_a_number = ~missing & parsed.isNull()
            missing = missing | F.isnan(parsed)
            value = F.when(F.isnan(parsed), None).otherwise(parsed)
            reasons += _numeric_reasons(feature, raw, value, not_a_number)
        if not feature.nullable:
            reasons.append(F.when(missing, F.lit(f"{feature.name}: missing")))
        values[feature.name] = value
    if CONTRACT.identifier and CONTRACT.identifier in frame.columns:
        reasons.append(
            F.when(F.col(CONTRACT.identifier).isNull(), F.lit(f"{CONTRACT.identifier}: missing"))
        )
    return values, F.concat_ws("; ", *reasons)
