"""Data validation derived from the feature contract; errors name the columns and rows at fault."""

import pandas as pd
import pandera.pandas as pa

from ..contract import CONTRACT
from ..errors import DataError
from ..fields import Categorical, Contract, Numeric

MAX_ROWS_SHOWN = 10


def _bounds(minimum: float | None, maximum: float | None) -> list[pa.Check]:
    if minimum is not None and maximum is not None:
        return [pa.Check.in_range(minimum, maximum)]
    if minimum is not None:
        return [pa.Check.ge(minimum)]
    if maximum is not None:
        return [pa.Check.le(maximum)]
    return []


WHOLE_NUMBER = pa.Check(lambda value: float(value).is_integer(), element_wise=True, name="whole")


def _feature_column(feature: Numeric | Categorical) -> pa.Column:
    if isinstance(feature, Categorical):
        return pa.Column(
            checks=pa.Check.isin(feature.categories),
            nullable=feature.nullable,
            description=feature.description,
        )
    checks = _bounds(feature.minimum, feature.maximum)
    if feature.integer:
        checks.append(WHOLE_NUMBER)
    return pa.Column(
        float,
        checks=checks,
        nullable=feature.nullable,
        coerce=True,
        description=feature.description,
    )


def _target_column(contract: Contract) -> pa.Column:
    """Rows without a target pass: training skips them and says how many (see fit.py)."""
    target = contract.target
    if target.kind == "classification":
        labels = str if target.text_labels else "Int64"
        return pa.Column(labels, pa.Check.isin(target.classes), coerce=True, nullable=True)
    bounds = _bounds(target.minimum, target.maximum)
    return pa.Column(float, bounds, coerce=True, nullable=True)


def build_schema(require_target: bool = True, contract: Contract = CONTRACT) -> pa.DataFrameSchema:
    """The pandera schema of the contract; extra columns are allowed and left untouched."""
    columns = {feature.name: _feature_column(feature) for feature in contract.features}
    if require_target:
        columns[contract.target.name] = _target_column(contract)
    if contract.identifier:
        columns[contract.identifier] = pa.Column(nullable=False, required=False)
    return pa.DataFrameSchema(columns, name="feature contract")


def _describe(failures: pd.DataFrame) -> str:
    lines = []
    checks = failures["check"].astype(str)
    # A value that cannot be converted also fails every later check: report the conversion only.
    unconvertible = set(failures.loc[checks.str.startswith("coerce_dtype"), "column"])
    failures = failures[~failures["column"].isin(unconvertible) | checks.str.startswith("coerce")]
    for (column, check), group in failures.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":
            lines.append(f"- missing column '{group['failure_case'].iloc[0]}'")
            continue
        rows = group["index"].dropna().astype(int).tolist()
        values = group["failure_case"].tolist()
        shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
        more = f" and {len(rows) - MAX_ROWS_SHOWN} more" if len(rows) > MAX_ROWS_SHOWN else ""
        sample = ", ".join(repr(v) for v in values[:3])
        where = f"rows {shown}{more}" if rows else "the whole column"
        lines.append(f"- column '{column}' fails {check} at {where} (e.g. {sample})")
    return "\n".join(lines)


def validate(
    frame: pd.DataFrame, require_target: bool = True, contract: Contract = CONTRACT
) -> pd.DataFrame:
    """Return the frame with contract columns coerced, or raise DataError listing every problem.

    Rows are counted from 0 in the order of the file (header excluded).
    """
    try:
        return build_schema(require_target, contract).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        problems = _describe(error.failure_cases)
        raise DataError(f"the data breaks the feature contract:\n{problems}") from None
