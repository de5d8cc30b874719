"""Batch-scoring benchmark: the single-process `predict` against `predict --engine spark`.

    make bench-spark    (or: uv run python benchmarks/spark_batch.py [--rows 2000000])

It renders the default project with `spark` on, trains it, generates `--rows` rows with the
project's own `data` command (Parquet), scores them with each engine through the command line,
from the same export, and prints rows/s for each and their ratio. Spark runs in local mode on
`--master` (default `local[*]`: every core); the times are whole commands, start-up included,
as a user sees them. Needs Java 17+. Compare figures within one run, not across machines.
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
        source = project / "data" / "bench.parquet"
        print(f"==> generating {args.rows:,} rows", flush=True)
        run(
            [*cli, "data", "--rows", str(args.rows), "--seed", "1", "--output", str(source)],
            project,
            env,
        )
        model = ["--model-uri", "models/model"]
        print("==> scoring in this process (local engine)", flush=True)
        local = run([*cli, "predict", str(source), "scored-local.parquet", *model], project, env)
        print(f"==> scoring with Spark ({args.master}, {os.cpu_count()} cores here)", flush=True)
        spark = run(
            [*cli, "predict", "--engine", "spark", str(source), "scored-spark", *model],
            project,
            env,
        )
        print()
        print(f"{'engine':<28}{'seconds':>10}{'rows/s':>14}")
        for name, seconds in (("local (one process)", local), (f"spark ({args.master})", spark)):
            print(f"{name:<28}{seconds:>10.1f}{args.rows / seconds:>14,.0f}")
        print(f"spark / local throughput: {local / spark:.2f}x")
    finally:
        if args.keep:
            print(f"project kept in {scratch / 'project'}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
