"""Traffic for a running service: realistic records, optionally drifted, sent as `/predict`
requests, with the true labels written aside for the drift job.

The records come from the example generator (synthetic.py) while its rows fit the contract:
their labels follow what a model of the bundled data learned. Once the contract changes they
are sampled from the contract alone (sampling.py).

`drift` goes from 0 (the training distribution) to 1 (every numeric feature shifted by one
standard deviation within its range, and half of each categorical feature moved to its
last category). Labels are those of the un-drifted rows: the world changed, the outcome
the model learned did not, so the live metrics fall as drift grows.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import CONTRACT
from ..data.ingest import write_table
from ..data.validate import validate
from ..errors import DataError
from ..features import records_of
from ..fields import Categorical
from ..sampling import sample_rows


def drifted(frame: pd.DataFrame, strength: float, seed: int = 0) -> pd.DataFrame:
    """`frame` with its features moved away from the training distribution by `strength`."""
    if not 0 <= strength <= 1:
        raise ValueError(f"drift must be between 0 and 1 (got {strength})")
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for feature in CONTRACT.features:
        column = out[feature.name]
        if isinstance(feature, Categorical):
            moved = rng.random(len(out)) < strength / 2
            out.loc[moved & column.notna(), feature.name] = feature.categories[-1]
            continue
        shifted = column + strength * column.std()
        if feature.minimum is not None or feature.maximum is not None:
            shifted = shifted.clip(feature.minimum, feature.maximum)
        out[feature.name] = shifted.round() if feature.integer else shifted.round(4)
    return out


def traffic_rows(n_rows: int, seed: int) -> pd.DataFrame:
    """`n_rows` labelled rows: the example generator's if they fit the contract, else sampled."""
    try:
        from ..synthetic import generate  # the example's: a user may change or delete it

        rows = generate(n_rows, seed)
        validate(rows)
    except (ImportError, DataError):
        return sample_rows(n_rows, seed)
    return rows


@dataclass
class Traffic:
    sent: int = 0
    records: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


def _post(endpoint: str, body: list[dict] | dict, headers: dict[str, str]) -> int:
    """POST `body` as JSON; the status of the answer, or 0 when none came."""
    request = urllib.request.Request(  # noqa: S310 (http or https, checked by `send`)
        endpoint, json.dumps(body).encode(), headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def send(
    url: str,
    *,
    requests: int = 200,
    batch: int = 1,
    drift: float = 0.0,
    seed: int = 0,
    concurrency: int = 4,
    api_key: str | None = None,
    labels_out: Path | None = None,
    rate: float | None = None,
) -> Traffic:
    """Send `requests` requests of `batch` records to `url`/predict; return what happened.

    With `labels_out`, writes `request_id, row, <target>` for every record sent, the file the
    drift job's `--labels` option reads. `rate` caps the requests per second.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the service URL must start with http:// or https:// (got {url!r})")
    rows = traffic_rows(requests * batch, seed)
    sent_rows = drifted(rows, drift, seed)
    endpoint = url.rstrip("/") + "/predict"
    traffic = Traffic()
    labels: list[dict] = []
    started = time.perf_counter()

    def one(index: int) -> int:
        body = records_of(sent_rows.iloc[index * batch : (index + 1) * batch])
        headers = {"content-type": "application/json", "x-request-id": f"sim-{seed}-{index}"}
        if api_key:
            headers["x-api-key"] = api_key
        if rate:
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        return _post(endpoint, body if batch > 1 else body[0], headers)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for index, status in enumerate(pool.map(one, range(requests))):
            traffic.sent += 1
            traffic.statuses[status] = traffic.statuses.get(status, 0) + 1
            if status != 200:
                traffic.failed += 1
                continue
            traffic.records += batch
            truth = rows[CONTRACT.target.name].iloc[index * batch : (index + 1) * batch]
            labels += [
                {"request_id": f"sim-{seed}-{index}", "row": row, CONTRACT.target.name: value}
                for row, value in enumerate(truth)
            ]
    traffic.seconds = time.perf_counter() - started
    if labels_out is not None:
        write_table(pd.DataFrame(labels), labels_out)
    return traffic
