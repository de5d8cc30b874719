"""Tier 2, `slow`: the image of a rendering builds and serves, for real on a private Docker
engine where one can start (run as Kubernetes would: non-root, read-only, only /tmp writable),
else simulated by the Dockerfile's install steps and command in a fresh folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from answer_sets import ANSWER_SETS
from deployment import DOCKER_SETS, dockerfile_instructions, run, slug_of
from harness import apt_install, loud, project_env, python_for, tool
from image_build import DockerEngine, import_base_image

BUILD_SET = next(
    name for name in DOCKER_SETS if ANSWER_SETS[name].get("python_version") == "3.11"
)  # Debian bookworm's python3, the base image that can be made here, is 3.11 (LightGBM's set)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def _wait_for(url: str, alive, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except (OSError, urllib.error.URLError):
            if not alive() or time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered") from None
            time.sleep(0.5)


def _post(url: str, body: str) -> dict:
    request = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def docker_engine():
    """A started private Docker engine, or None (with the reason printed) where none can run."""
    for command, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap")):
        if shutil.which(command) is None:
            problem = apt_install(package)
            if problem:
                loud(f"CANNOT INSTALL {package}: {problem}")
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        loud("NO DOCKER ENGINE CAN BE INSTALLED HERE: THE IMAGE BUILD IS SIMULATED, NOT REAL")
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="dk-"))  # short: the socket path has a length limit
    engine = DockerEngine(folder)
    problem = engine.start()
    if problem:
        loud(f"DOCKERD DID NOT START: THE IMAGE BUILD IS SIMULATED, NOT REAL:\n{problem}")
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(folder, ignore_errors=True)


def example_request(project: Path) -> str:
    return re.search(r"-d '(\{.*\})'", (project / "README.md").read_text()).group(1)


def serve_in_container(engine, image, project, package, *, environment=(), healthcheck=False):
    """Run `image` as Kubernetes would (non-root, read-only root file system, only /tmp
    writable), on the host network; return its answer to the README's example request."""
    port = 8000 if _port_is_free(8000) else _free_port()
    command = [] if port == 8000 else [package, "serve", "--host", "0.0.0.0", "--port", port]
    if command:
        loud(f"port 8000 is taken on this machine: the container serves on {port} instead")
    container = f"{package}-test-{os.getpid()}"
    options = ["--network=host", "--read-only", "--tmpfs=/tmp", "--health-interval=2s"]
    options += [f"--env={variable}" for variable in environment]
    engine.docker("run", "--detach", f"--name={container}", *options, image, *command)

    def running() -> bool:
        state = engine.docker("inspect", "--format={{.State.Running}}", container, check=False)
        return state.stdout.strip() == "true"

    try:
        try:
            _wait_for(f"http://127.0.0.1:{port}/ready", running)
        except AssertionError:
            logs = engine.docker("logs", container, check=False)
            raise AssertionError(
                f"{image} did not become ready:\n{logs.stdout}{logs.stderr}"
            ) from None
        answer = _post(f"http://127.0.0.1:{port}/predict", example_request(project))
        assert len(answer["predictions"]) == 1, answer
        if healthcheck and not command:  # the image's own HEALTHCHECK: no curl or wget inside
            deadline, status = time.monotonic() + 60, ""
            while status != "healthy" and time.monotonic() < deadline:
                time.sleep(1)
                health = engine.docker("inspect", "--format={{.State.Health.Status}}", container)
                status = health.stdout.strip()
            assert status == "healthy", status
        return answer
    finally:
        engine.docker("rm", "--force", container, check=False)


HEAVY = ["mlflow", "pandas", "scipy", "sklearn", "skops"]  # none is needed to serve ONNX


def image_size(engine, image: str) -> int:
    return int(engine.docker("image", "inspect", "--format={{.Size}}", image).stdout)


def installed(engine, image: str, modules: list[str]) -> list[str]:
    """Which of `modules` the image's Python can import."""
    probe = f"import importlib.util as u; print(*[m for m in {modules!r} if u.find_spec(m)])"
    found = engine.docker("run", "--rm", "--network=none", image, "python", "-c", probe)
    return found.stdout.split()


def start_mlflow_server(project: Path, env: dict, folder: Path):
    """A tracking server with proxied artifacts, from the rendering's own environment."""
    port = _free_port()
    server = subprocess.Popen(
        [
            project / ".venv/bin/mlflow", "server", "--host=127.0.0.1", f"--port={port}",
            "--workers=1", f"--backend-store-uri=sqlite:///{folder}/mlflow.db",
            "--serve-artifacts", f"--artifacts-destination={folder.as_uri()}/artifacts",
        ],
        env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    _wait_for(f"http://127.0.0.1:{port}/health", lambda: server.poll() is None, seconds=120)
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.slow
@pytest.mark.xdist_group("port-8000")  # with the course guide, which serves on it too
def test_image_builds_and_serves_predictions(rendered, answers_of, docker_engine, tmp_path):
    # A copy: training fills the folder (.venv, models/), which the render tests must not see.
    project = Path(shutil.copytree(rendered(BUILD_SET), tmp_path / "project"))
    answers = answers_of(BUILD_SET)
    package, slug = answers["package_name"], slug_of(answers)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} ON THIS MACHINE: cannot train")
    env = project_env(answers["python_version"])
    run(["make", "train"], cwd=project, env=env, timeout=1800)  # writes uv.lock and models/model
    if docker_engine is None:
        simulate_the_image(project, answers, env)
        return
    engine = docker_engine
    base = dockerfile_instructions(project / "Dockerfile")[0][1].split()[0]
    import_base_image(engine, base)

    # The default image: the model of `make train` baked in.
    image = f"{slug}:test"
    started = time.monotonic()
    engine.docker("build", "--network=host", "--tag", image, project, timeout=1800)
    build_seconds = time.monotonic() - started
    size, base_size = (image_size(engine, name) for name in (image, base))
    print(
        f"image {image}: {size / 1e6:.0f} MB ({(size - base_size) / 1e6:.0f} MB over the "
        f"{base_size / 1e6:.0f} MB base made here), built in {build_seconds:.0f} s"
    )
    layers = engine.docker("history", "--format", "{{.Size}}\t{{.CreatedBy}}", image).stdout
    print("its layers:\n" + "\n".join(line[:100] for line in layers.splitlines()))
    user = engine.docker("image", "inspect", "--format={{.Config.User}}", image).stdout.strip()
    assert user == "10001:10001"
    # The model has an ONNX graph: the image holds neither the exact fallback nor MLflow.
    assert (project / "models/model/model.onnx").is_file()
    assert installed(engine, image, HEAVY) == []
    answer = serve_in_container(engine, image, project, package, healthcheck=True)
    print(f"prediction from the baked image: {answer}")

    # The registry image: no model inside; it pulls the registered version at start.
    registry_image = f"{slug}:registry"
    engine.docker(
        "build", "--network=host", "--target=registry", "--tag", registry_image, project,
        timeout=600,
    )  # fmt: skip
    print(f"registry image: {image_size(engine, registry_image) / 1e6:.0f} MB")
    # MLflow's client alone (mlflow-skinny), and the exact fallback for a model without a graph
    assert installed(engine, registry_image, HEAVY) == HEAVY  # scipy comes with scikit-learn
    assert installed(engine, registry_image, ["matplotlib", "pyarrow"]) == []  # no train group
    if answers["model_family"] == "lightgbm":  # its library loads: the image has libgomp1
        engine.docker("run", "--rm", "--network=none", registry_image, "python", "-c",
                      "import lightgbm")  # fmt: skip
    server, tracking_uri = start_mlflow_server(project, env, tmp_path)
    try:
        trained = {**env, "MLFLOW_TRACKING_URI": tracking_uri}
        run(
            [tool("uv"), "run", "--frozen", package, "train"], cwd=project, env=trained, timeout=900
        )
        answer = serve_in_container(
            engine, registry_image, project, package,
            environment=[
                f"MLFLOW_TRACKING_URI={tracking_uri}",
                f"{package.upper()}_MODEL_URI=models:/{slug}@challenger",  # what train sets
            ],
        )  # fmt: skip
        print(f"prediction from the registry image: {answer}")
        if answers["kubernetes"]:
            tune_in_trainer_image(engine, project, answers, tracking_uri)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def tune_in_trainer_image(engine, project: Path, answers: dict, tracking_uri: str) -> None:
    """deploy/trainer/Dockerfile, the image of the Kubernetes tuning workers: it builds, and
    runs `tune` as the Job runs it (non-root, read-only, only /tmp writable, the storage from
    the environment), its trials logged to the tracking server."""
    package, slug = answers["package_name"], slug_of(answers)
    trainer = f"{slug}-trainer:test"
    started = time.monotonic()
    engine.docker(
        "build", "--network=host", "--file", project / "deploy/trainer/Dockerfile",
        "--tag", trainer, project, timeout=1800,
    )  # fmt: skip
    print(f"trainer image: {image_size(engine, trainer) / 1e6:.0f} MB, built in "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    tuned = engine.docker(
        "run", "--rm", "--network=host", "--read-only", "--tmpfs=/tmp",
        f"--env=MLFLOW_TRACKING_URI={tracking_uri}",
        f"--env={package.upper()}_TUNE_STORAGE=sqlite:////tmp/study.db",
        trainer, package, "tune", "--trials", "3", "--study", "in-the-image",
        timeout=900,
    )  # fmt: skip
    output = tuned.stdout + tuned.stderr
    assert "study 'in-the-image': 3 trials" in output and "Traceback" not in output, output
    # The server holds the worker's parent run and a child run per trial (MLflow's REST API).
    api = f"{tracking_uri}/api/2.0/mlflow"
    experiments = _post(f"{api}/experiments/search", json.dumps({"max_results": 100}))
    ids = [experiment["experiment_id"] for experiment in experiments["experiments"]]
    found = _post(f"{api}/runs/search", json.dumps({"experiment_ids": ids, "max_results": 100}))
    names = sorted(run["info"]["run_name"] for run in found["runs"])
    assert {"tune in-the-image", "trial 0", "trial 1", "trial 2"} <= set(names), names


def simulate_the_image(project: Path, answers: dict, env: dict) -> None:
    """Without an engine: the Dockerfile's install steps in a fresh folder, then its command."""
    loud(
        "NO DOCKER ENGINE: SIMULATING THE IMAGE (the Dockerfile's uv install and command in a "
        "fresh folder on this machine). NO IMAGE WAS BUILT AND NO SIZE CAN BE MEASURED."
    )
    steps = dockerfile_instructions(project / "Dockerfile")
    (uv_version,) = [a.split("=")[1] for k, a in steps if k == "ARG" and "UV_VERSION=" in a]
    install = next(a for k, a in steps if k == "RUN" and "uv sync" in a)  # the baked image's
    package = answers["package_name"]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        python = python_for(answers["python_version"])
        run([python, "-m", "venv", root / "uv"])
        run([root / "uv/bin/pip", "install", "--quiet", f"uv=={uv_version}"], timeout=600)
        source = root / "src"
        shutil.copytree(project, source, ignore=shutil.ignore_patterns(".venv", "models", "mlruns"))
        build_env = {
            **env,
            "UV_PROJECT_ENVIRONMENT": str(root / "app/.venv"),
            "UV_PYTHON": python,
            "UV_COMPILE_BYTECODE": "1",
        }
        command = install.replace("/opt/uv/bin/uv", str(root / "uv/bin/uv")).split()
        run(command, cwd=source, env=build_env, timeout=1800)
        shutil.copytree(project / "models" / "model", root / "app/model")
        port = _free_port()
        serve_env = {k: v for k, v in env.items() if not k.startswith(package.upper())}
        serve_env[f"{package.upper()}_MODEL_URI"] = str(root / "app/model")
        serve_env[f"{package.upper()}_MODELS_DIR"] = str(root / "tmp/models")
        command = [root / f"app/.venv/bin/{package}", "serve", "--host=127.0.0.1", f"--port={port}"]
        server = subprocess.Popen(
            command,
            cwd=root / "app",
            env=serve_env,
            start_new_session=True,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/health", lambda: server.poll() is None)
            answer = _post(f"http://127.0.0.1:{port}/predict", example_request(project))
            print(f"prediction from the simulated image: {answer}")
            assert len(answer["predictions"]) == 1
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
