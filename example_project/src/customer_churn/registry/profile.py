"""The production profile of a serving export: latency, size on disk, memory when loaded.

It measures what the service runs (`ServingModel` of runtime.py: the ONNX graph, or the exact
pipeline when there is none) in a fresh process, so that training's imports and memory do
not count: the process's resident memory (RSS) once the serving libraries are imported and
again once the model is loaded and has answered; then the latency of `predict_records` on
one record at a time and on batches, as the median (p50) and 99th percentile (p99).

Run alone: `python -m <package>.registry.profile EXPORT_FOLDER RECORDS.json` prints the JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import ProjectError

MB = 1024 * 1024


def _rss_mb() -> float:
    """Resident memory of this process now (Linux), else its peak so far."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (MB if sys.platform == "darwin" else 1024)


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    import numpy as np

    milliseconds = np.asarray(samples_ns, dtype=float) / 1e6
    return {
        "p50_ms": round(float(np.percentile(milliseconds, 50)), 4),
        "p99_ms": round(float(np.percentile(milliseconds, 99)), 4),
    }


def _timed(call, arguments: list) -> list[int]:
    """Nanoseconds of `call(argument)` for each argument."""
    samples = []
    for argument in arguments:
        started = time.perf_counter_ns()
        call(argument)
        samples.append(time.perf_counter_ns() - started)
    return samples


def measure_here(
    folder: Path, records: list[dict[str, Any]], single_runs: int, batch_size: int, batch_runs: int
) -> dict[str, Any]:
    """The profile, measured in this process (`measure` runs it in a fresh one)."""
    import numpy as np  # noqa: F401  (imported before the first RSS reading, like onnxruntime)
    import onnxruntime  # noqa: F401

    from .artifact import ONNX_FILE, PIPELINE_FILE, load_serving_model

    before = _rss_mb()
    model = load_serving_model(folder)
    model.predict_records(records[:1])  # the first call allocates the session's buffers
    after = _rss_mb()
    loaded_file = folder / (ONNX_FILE if model.backend == "onnx" else PIPELINE_FILE)
    cycle = [records[i % len(records)] for i in range(max(single_runs, batch_size))]
    single = _timed(model.predict_records, [[record] for record in cycle[:single_runs]])
    batch = cycle[:batch_size]
    return {
        "backend": model.backend,
        "artifact_file": loaded_file.name,
        "artifact_mb": round(loaded_file.stat().st_size / MB, 4),
        "export_mb": round(sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / MB, 4),
        "rss_before_load_mb": round(before, 2),
        "rss_after_load_mb": round(after, 2),
        "memory_mb": round(after - before, 2),
        "single": {"runs": single_runs} | _percentiles(single),
        "batch": {"size": batch_size, "runs": batch_runs}
        | _percentiles(_timed(model.predict_records, [batch] * batch_runs)),
    }


def measure(
    folder: Path,
    records: list[dict[str, Any]],
    single_runs: int = 300,
    batch_size: int = 1000,
    batch_runs: int = 20,
    timeout: float = 300,
) -> dict[str, Any]:
    """Profile the export at `folder` in a fresh process, on `records` (validated, JSON-able)."""
    if not records:
        raise ProjectError("the production profile needs at least one record")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "records.json"
        path.write_text(json.dumps(records, default=float))
        command = [
            sys.executable,
            "-m",
            __name__,
            str(folder),
            str(path),
            str(single_runs),
            str(batch_size),
            str(batch_runs),
        ]
        # This interpreter and module, arguments as a list: no shell, nothing from outside.
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=timeout
        )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise ProjectError(f"profiling the export at {folder} failed: {lines[-1]}")
    return json.loads(done.stdout)


# Run metrics of the profile, which the promotion gate reads: name -> where in the profile.
PROFILE_METRICS = {
    "profile_single_p50_ms": ("single", "p50_ms"),
    "profile_single_p99_ms": ("single", "p99_ms"),
    "profile_batch_p50_ms": ("batch", "p50_ms"),
    "profile_batch_p99_ms": ("batch", "p99_ms"),
    "profile_artifact_mb": (None, "artifact_mb"),
    "profile_memory_mb": (None, "memory_mb"),
}


def summary(profile: dict[str, Any]) -> dict[str, float]:
    """The profile's figures as flat run metrics (`PROFILE_METRICS`)."""
    return {
        name: float((profile[part] if part else profile)[key])
        for name, (part, key) in PROFILE_METRICS.items()
    }


def main(argv: list[str]) -> None:
    folder, records_path, single_runs, batch_size, batch_runs = argv
    records = json.loads(Path(records_path).read_text())
    profile = measure_here(
        Path(folder), records, int(single_runs), int(batch_size), int(batch_runs)
    )
    print(json.dumps(profile))


if __name__ == "__main__":
    main(sys.argv[1:])
