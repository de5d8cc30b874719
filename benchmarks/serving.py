"""Serving benchmark: the rendered service against `mlflow models serve`, a DataFrame-per-request
endpoint and a bare endpoint that only validates the body (the ceiling), on the service's own
stack (asyncio and httptools) and on the fastest one (uvloop and httptools), where the service
runs too when its settings ask for uvloop.

    make bench    (or: uv run python benchmarks/serving.py [--duration 15] [--connections 8]
                   [--families random_forest,linear,lightgbm,xgboost] [--problem-type regression])

It renders the default project, trains it, then serves the same registered model four ways
(ours and the bare endpoint on both stacks), each on one uvicorn worker, loads each with wrk from a
separate process at fixed concurrency, and prints requests/s, p50/p99 latency, resident
memory after the run, time to ready, and each one's ratio to ours; then the per-record cost
of a 1,000-record batch against single requests; then, for every other model family
(`--families`), the same project rendered with it, trained and served: its backend, its ONNX
graph's largest difference from the pipeline on the holdout, and the same load figures.
The figures depend on the machine: compare them within one run, not across machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import (  # noqa: E402
    free_port,
    post_json,
    project_env,
    read_answers,
    readme_example,
    render,
    wait_until_answers,
)

TARGETS = {
    "throughput vs mlflow models serve": ">= 20x",
    "throughput vs bare endpoint": ">= 0.9x",
    "on uvloop: throughput vs bare endpoint": ">= 0.9x",
    "default vs bare endpoint on uvloop": "(see `serve`)",
    "p99 latency": "<= 5 ms",
    "resident memory": "<= 120 MB",
    "ready": "<= 2 s",
    "batch of 1,000 per record vs single": ">= 50x faster",
}

DATAFRAME_APP = """
import pandas as pd
from fastapi import FastAPI
from {package}.contract import CONTRACT
from {package}.registry.artifact import load_pipeline
from {package}.service.schemas import Record
from pathlib import Path

pipeline = load_pipeline(Path("models/model"))
app = FastAPI()

@app.get("/health")
def health():
    return {{"status": "ok"}}

@app.post("/predict")
def predict(record: Record):
    frame = pd.DataFrame([record.model_dump()], columns=CONTRACT.feature_names)
    answer = {{"prediction": pipeline.predict(frame)[0].item()}}
    if hasattr(pipeline, "predict_proba"):  # a classifier
        answer["probability"] = float(pipeline.predict_proba(frame)[0, -1])
    return answer
"""

BARE_APP = """
from fastapi import FastAPI
from {package}.service.schemas import Record

app = FastAPI()

@app.get("/health")
async def health():
    return {{"status": "ok"}}

@app.post("/predict")
async def predict(record: Record):
    return {{"prediction": 0, "probability": 0.5}}
"""


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    ready_s: float
    errors: int


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total / 1024


def wrk(url: str, body: str, seconds: int, connections: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50%"),
        "p99": latency("99%"),
        "errors": (int(errors.group(1)) if errors else 0)
        + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0),
    }


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("==> installing wrk (Debian package)", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)


def measure(name, command, env, project, health, url, body, args, scratch) -> Result:
    log = open(scratch / f"{name.replace(' ', '_')}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_until_answers(health, process, timeout=120)
        wrk(url, body, 2, args.connections, scratch)  # warm-up
        figures = wrk(url, body, args.duration, args.connections, scratch)
        rss = tree_rss_mb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    result = Result(
        name, figures["rps"], figures["p50"], figures["p99"], rss, ready, figures["errors"]
    )
    print(
        f"    {name}: {result.requests_per_second:,.0f} requests/s, p99 {result.p99_ms:.1f} ms",
        flush=True,
    )
    return result


def batch_speedup(port: int, record: dict, repeats: int = 200) -> tuple[float, float]:
    """Per-record milliseconds for single requests and for batches of 1,000."""

    def post(payload) -> None:
        post_json(f"http://127.0.0.1:{port}/predict", payload)

    for _ in range(20):
        post(record)
    started = time.perf_counter()
    for _ in range(repeats):
        post(record)
    single = (time.perf_counter() - started) / repeats * 1000
    batch = [record] * 1000
    post(batch)
    started = time.perf_counter()
    for _ in range(20):
        post(batch)
    per_record = (time.perf_counter() - started) / 20 / 1000 * 1000
    return single, per_record


FAMILIES = ("random_forest", "linear", "lightgbm", "xgboost")  # beside the default's


def backend_of(project: Path) -> str:
    """What serves a project's export, and how far its ONNX graph is from the pipeline."""
    graph = json.loads((project / "models" / "model" / "serving.json").read_text())["onnx"]
    return f"onnx, {graph['max_difference']:.1e}" if graph else "sklearn (no ONNX graph)"


def family_figures(family: str, record: dict, args, scratch: Path) -> tuple[Result, str]:
    """Render the default project with `family`, train it, serve its export under load."""
    answers = {"model_family": family, "problem_type": args.problem_type}
    project = render(scratch / family / "project", answers)
    answers = read_answers(project)
    env = project_env(answers["python_version"])
    print(f"==> {family}: installing and training", flush=True)
    subprocess.run(["make", "train"], cwd=project, env=env, check=True, capture_output=True)
    parity = backend_of(project)
    port = free_port()
    command = [str(project / ".venv/bin" / answers["package_name"]), "serve",
               "--model-uri", "models/model", "--port", str(port)]  # fmt: skip
    result = measure(
        family, command, env, project, f"http://127.0.0.1:{port}/ready",
        f"http://127.0.0.1:{port}/predict", json.dumps(record), args, scratch,
    )  # fmt: skip
    return result, parity


def print_families(rows: list[tuple[Result, str]]) -> None:
    print("\nModel families, each served as `serve` runs it (the same load):")
    header = f"{'family':<24}" + "".join(f"{c:>9}" for c in ("req/s", "p50 ms", "p99 ms", "RSS MB"))
    header += "  backend, ONNX max diff"
    print(header)
    print("-" * len(header))
    for r, parity in rows:
        print(
            f"{r.name:<24}{r.requests_per_second:>9,.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.rss_mb:>9.0f}  {parity}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--families", default=",".join(FAMILIES),
        help="other model families to render, train and serve (comma-separated; '' for none)",
    )  # fmt: skip
    parser.add_argument(
        "--problem-type", choices=("classification", "regression"), default="classification",
        help="the problem type of every project rendered (the template's question)",
    )  # fmt: skip
    args = parser.parse_args()
    families = [name for name in args.families.split(",") if name]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown model families {unknown}: choose from {', '.join(FAMILIES)}")
    ensure_wrk()

    scratch = Path(tempfile.mkdtemp(prefix="copier-mlops-bench-"))
    project = render(scratch / "project", {"problem_type": args.problem_type})
    answers = read_answers(project)
    package = answers["package_name"]
    env = project_env(answers["python_version"])
    print(f"==> training the default {args.problem_type} project in {project}", flush=True)
    subprocess.run(
        ["make", "train", "promote"], cwd=project, env=env, check=True, capture_output=True
    )
    bin_dir = project / ".venv" / "bin"
    record = readme_example(project)
    for name, source in (("dataframe_app", DATAFRAME_APP), ("bare_app", BARE_APP)):
        (project / f"{name}.py").write_text(textwrap.dedent(source.format(package=package)))

    manifest = json.loads((project / "models" / "model" / "serving.json").read_text())
    uri = f"models:/{manifest['name']}@challenger"
    env_run = env | {
        "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",
        "PYTHONPATH": str(project),
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",  # mlflow starts the uvicorn it finds
    }
    results = []
    print(
        f"==> load: wrk, {args.connections} connections, {args.duration} s per server", flush=True
    )
    # The export of the registered version: what `pull` would fetch, without the pull's MLflow
    # import (a separate process, ~10 s here) counted as the service's start-up.
    serve_ours = [str(bin_dir / package), "serve", "--model-uri", "models/model",
                  "--port", "{port}"]  # fmt: skip
    prefix = f"{package.upper()}_"
    for name, command, health, body, settings in (
        ("ours", serve_ours, "/ready", record, {}),
        ("ours, access log off", serve_ours, "/ready", record, {f"{prefix}ACCESS_LOG": "false"}),
        ("ours, uvloop", serve_ours, "/ready", record, {f"{prefix}EVENT_LOOP": "uvloop"}),
        (
            "mlflow models serve",
            [str(bin_dir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
             "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"],
            "/health",
            {"dataframe_records": [record]},
            {},
        ),
        (
            "DataFrame per request",
            [str(bin_dir / "uvicorn"), "dataframe_app:app", "--port", "{port}", "--workers", "1",
             "--no-access-log"],
            "/health",
            record,
            {},
        ),
        (
            "bare (validate only)",
            [str(bin_dir / "uvicorn"), "bare_app:app", "--port", "{port}", "--workers", "1",
             "--no-access-log", "--loop", "asyncio"],
            "/health",
            record,
            {},
        ),
        # The fastest stack uvicorn has: uvloop beside httptools. Ours runs on it only when
        # asked (see `serve`: libuv accepts one connection per pass of the loop, so under
        # overload new connections wait seconds).
        (
            "bare, uvloop",
            [str(bin_dir / "uvicorn"), "bare_app:app", "--port", "{port}", "--workers", "1",
             "--no-access-log", "--loop", "uvloop"],
            "/health",
            record,
            {},
        ),
    ):  # fmt: skip
        port = free_port()
        command = [part.replace("{port}", str(port)) for part in command]
        path = "/invocations" if name.startswith("mlflow") else "/predict"
        results.append(
            measure(
                name,
                command,
                env_run | settings,
                project,
                f"http://127.0.0.1:{port}{health}",
                f"http://127.0.0.1:{port}{path}",
                json.dumps(body),
                args,
                scratch,
            )  # fmt: skip
        )

    port = free_port()
    server = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in serve_ours],
        cwd=project, env=env_run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/ready", server, timeout=120)
        single_ms, batch_ms = batch_speedup(port, record)
    finally:
        server.terminate()
        server.wait(timeout=30)

    rows = [(dataclasses.replace(results[0], name="hist_gradient_boosting"), backend_of(project))]
    rows += [family_figures(family, record, args, scratch) for family in families]

    ours = results[0]
    print()
    print(f"Serving benchmark: {args.connections} connections, {args.duration} s, one worker each")
    columns = ("req/s", "p50 ms", "p99 ms", "RSS MB", "ready s", "errors", "vs ours")
    header = f"{'server':<24}" + "".join(f"{column:>9}" for column in columns)
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r.requests_per_second / ours.requests_per_second
        print(
            f"{r.name:<24}{r.requests_per_second:>9,.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.rss_mb:>9.0f}{r.ready_s:>9.2f}{r.errors:>9}{ratio:>8.2f}x"
        )
    by_name = {result.name: result for result in results}
    versus_mlflow = ours.requests_per_second / by_name["mlflow models serve"].requests_per_second
    versus_bare = ours.requests_per_second / by_name["bare (validate only)"].requests_per_second
    bare_uvloop = by_name["bare, uvloop"].requests_per_second
    on_uvloop = by_name["ours, uvloop"].requests_per_second / bare_uvloop
    measured = {
        "throughput vs mlflow models serve": f"{versus_mlflow:.1f}x",
        "throughput vs bare endpoint": f"{versus_bare:.2f}x",
        "on uvloop: throughput vs bare endpoint": f"{on_uvloop:.2f}x",
        "default vs bare endpoint on uvloop": f"{ours.requests_per_second / bare_uvloop:.2f}x",
        "p99 latency": f"{ours.p99_ms:.1f} ms",
        "resident memory": f"{ours.rss_mb:.0f} MB",
        "ready": f"{ours.ready_s:.2f} s",
        "batch of 1,000 per record vs single": (
            f"{single_ms / batch_ms:.0f}x faster "
            f"({single_ms:.2f} ms vs {batch_ms * 1000:.1f} us per record)"
        ),
    }
    print()
    print(f"{'target':<40}{'wanted':<16}measured")
    for name, wanted in TARGETS.items():
        print(f"{name:<40}{wanted:<16}{measured[name]}")
    print_families(rows)
    print(f"\nlogs and the project: {scratch}")


if __name__ == "__main__":
    main()
