"""Reading and writing tables (CSV or Parquet), atomically, and the seeded train/test split."""

from pathlib import Path

import pandas as pd

from ..contract import CONTRACT
from ..errors import DataError
from .files import replacing

SUFFIXES = (".csv", ".parquet")


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type '{path.suffix}', expected .csv or .parquet")


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame."""
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as error:  # pandas raises many types; the user needs the file and reason
        raise DataError(f"{path}: cannot be read ({error})") from error
    if frame.empty:
        raise DataError(f"{path}: the file holds no rows")
    return frame


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or Parquet whole or not at all (see `replacing`)."""
    path = Path(path)
    _check_suffix(path)
    with replacing(path) as temporary:
        if path.suffix.lower() == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            frame.to_parquet(temporary, index=False)
    return path


def split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded train/test split, stratified by class for classification."""
    from sklearn.model_selection import train_test_split  # imported here: slow, rarely needed

    target = frame[CONTRACT.target.name]
    stratify = target if CONTRACT.target.kind == "classification" else None
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)
