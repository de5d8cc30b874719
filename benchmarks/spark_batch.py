"""Batch-scoring benchmark: the single-process `predict` against `predict --engine spark`.

    make bench-spark    (or: uv run python benchmarks/spark_batch.py [--rows 2000000])

It renders the default project with `spark` on, trains it, generates `--rows` rows with the
project's own `data` command (Parquet), scores them with each engine through the command line,
from the same export, and prints rows/s for each and their ratio. Spark runs in local mode on
`--master` (default `local[*]`: every core); the times are whole commands, start-up included,
as a user sees them. A second, small run (`--small` rows) gives each engine's fixed cost, and
so its marginal rows/s: what decides where Spark pays off once it has more cores than here.
Needs Java 17+. Compare figures within one run, not across machines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import project_env, read_answers, render  # noqa: E402


def run(command: list[str], project: Path, env: dict[str, str]) -> float:
    """Run `command` in `project`; return its wall time in seconds, or stop with its output."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows to score")
    parser.add_argument("--master", default="local[*]", help="Spark master (local mode here)")
    parser.add_argument("--small", type=int, default=10_000, help="rows of the fixed-cost run")
    parser.add_argument("--keep", action="store_true", help="keep the rendered project")
    args = parser.parse_args()
    if shutil.which("java") is None:
        raise SystemExit(
            "Spark needs Java 17 or newer: install it (apt-get install openjdk-17-jre-headless)"
        )

    scratch = Path(tempfile.mkdtemp(prefix="copier-mlops-bench-spark-"))
    try:
        project = render(scratch / "project", {"spark": True})
        answers = read_answers(project)
        package = answers["package_name"]
        env = project_env(answers["python_version"])
        prefix = package.upper()
        env |= {
            f"{prefix}_SPARK_MASTER": args.master,
            f"{prefix}_SPARK_CONF": '{"spark.ui.enabled": "false"}',
        }
        print(f"==> installing and training the project in {project}", flush=True)
        run(["make", "train"], project, env)
        cli = [str(project / ".venv" / "bin" / package)]
        model = ["--model-uri", "models/model"]
        engines = {
            "local (one process)": ["predict"],
            f"spark ({args.master})": ["predict", "--engine", "spark"],
        }
        seconds: dict[tuple[str, int], float] = {}
        for rows in (args.small, args.rows):
            source = project / "data" / f"bench-{rows}.parquet"
            print(f"==> generating {rows:,} rows", flush=True)
            command = [*cli, "data", "--rows", str(rows), "--seed", "1", "--output", str(source)]
            run(command, project, env)
            for number, (name, predict) in enumerate(engines.items()):
                print(f"==> {rows:,} rows: {name}", flush=True)
                output = f"scored-{number}-{rows}" + (".parquet" if number == 0 else "")
                command = [*cli, *predict, str(source), output, *model]
                seconds[name, rows] = run(command, project, env)
        print(f"\n{args.rows:,} rows, {os.cpu_count()} cores here")
        print(f"{'engine':<24}{'seconds':>9}{'rows/s':>10}{'fixed s':>9}{'marginal rows/s':>17}")
        for name in engines:
            total, fixed = seconds[name, args.rows], seconds[name, args.small]
            marginal = (args.rows - args.small) / max(total - fixed, 1e-9)
            print(
                f"{name:<24}{total:>9.1f}{args.rows / total:>10,.0f}{fixed:>9.1f}{marginal:>17,.0f}"
            )
        local, spark = (seconds[name, args.rows] for name in engines)
        print(f"spark / local throughput: {local / spark:.2f}x")
    finally:
        if args.keep:
            print(f"project kept in {scratch / 'project'}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
