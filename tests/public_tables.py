"""Real public tables that PyPI packages ship, read from the installed packages: no network.

- penguins (palmerpenguins): three species as text, two categorical columns, missing values;
- cars (vega_datasets): miles per gallon to predict, a categorical origin, missing values in
  the target and a feature, and two columns `contract init` must refuse (a name, a date);
- biopsy (MASS, as pydataset ships it): benign or malignant tissue, missing values, an id.
"""

from __future__ import annotations

import importlib.util
import json
import tarfile
from pathlib import Path

import pandas as pd


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"the package '{name}' is missing: run `make install`")
    return Path(spec.origin).parent


def penguins(destination: Path) -> Path:
    """penguins.csv as the package ships it: 344 rows, 8 columns."""
    source = _package_folder("palmerpenguins") / "data" / "penguins.csv"
    destination.write_bytes(source.read_bytes())
    return destination


def cars(destination: Path) -> Path:
    """The cars table of vega_datasets as CSV: 406 rows, 9 columns."""
    records = json.loads((_package_folder("vega_datasets") / "_data" / "cars.json").read_text())
    pd.DataFrame(records).to_csv(destination, index=False)
    return destination


def biopsy(destination: Path) -> Path:
    """MASS's biopsy table as CSV, without R's row-number column: 699 rows, 11 columns."""
    archive = _package_folder("pydataset") / "resources.tar.gz"
    with tarfile.open(archive) as bundle:
        member = bundle.extractfile("resources/rdata/csv/MASS/biopsy.csv")
        frame = pd.read_csv(member, index_col=0)
    frame.to_csv(destination, index=False)
    return destination
