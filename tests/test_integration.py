"""Tier 4: the rendered project against a real MLflow server on PostgreSQL.

Starts PostgreSQL (Debian package) and `mlflow server` on loopback, then, in the default
rendering: train -> evaluate -> promote; a second, worse model is refused; the service pulls
`@champion` from the server and answers; the rows in the database and the artifacts on disk
are checked; with the server stopped, training fails fast and registers nothing. Then two
`tune` workers share one Optuna study in a database of its own.
"""

import json
import os
import secrets
import shutil
import subprocess
import time

import pytest

from harness import (
    free_port,
    post_json,
    project_env,
    python_for,
    read_answers,
    readme_example,
    wait_until_answers,
)

# One PostgreSQL cluster and role for the module: its tests must share one process (a second
# fixture on another xdist worker would drop and re-create the role under the first).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres")]

DATABASE = "mlops_it"
OPTUNA_DATABASE = "mlops_it_optuna"  # Optuna's tables beside MLflow's would clash (alembic)
USER = "mlops_it"


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster on 127.0.0.1:5432 with a fresh database; stopped if we started it."""
    if not shutil.which("pg_ctlcluster"):
        installed = subprocess.run(
            ["apt-get", "install", "-y", "-q", "postgresql"], capture_output=True, text=True
        )
        if installed.returncode != 0:
            pytest.skip(f"POSTGRESQL CANNOT BE INSTALLED HERE: {installed.stderr[-500:]}")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    status = subprocess.run(["pg_ctlcluster", version, "main", "status"], capture_output=True)
    started = status.returncode != 0
    if started:
        subprocess.run(["pg_ctlcluster", version, "main", "start"], check=True)
    password = secrets.token_hex(12)

    def sql(statement: str) -> None:
        subprocess.run(
            ["su", "postgres", "-c", f'psql -q -v ON_ERROR_STOP=1 -c "{statement}"'],
            check=True,
            capture_output=True,
        )

    databases = (DATABASE, OPTUNA_DATABASE)
    for database in databases:
        sql(f"DROP DATABASE IF EXISTS {database}")
    sql(f"DROP ROLE IF EXISTS {USER}")
    sql(f"CREATE ROLE {USER} LOGIN PASSWORD '{password}'")
    for database in databases:
        sql(f"CREATE DATABASE {database} OWNER {USER}")
    yield f"postgresql://{USER}:{password}@127.0.0.1:5432/{DATABASE}", password
    for database in databases:
        sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    sql(f"DROP ROLE IF EXISTS {USER}")
    if started:
        subprocess.run(["pg_ctlcluster", version, "main", "stop"], check=False)


def _query(password: str, statement: str, database: str = DATABASE) -> list[list[str]]:
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", USER, "-d", database, "-tA", "-F", "\t", "-c", statement],
        env=os.environ | {"PGPASSWORD": password},
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split("\t") for line in result.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def project(workspace):
    folder = workspace("defaults")
    answers = read_answers(folder)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} HERE: cannot install the rendering")
    env = project_env(answers["python_version"])
    # The project's own install: its training group holds the PostgreSQL driver (psycopg 3,
    # which SQLAlchemy 2 maps postgresql:// to) for the server and the shared study.
    subprocess.run(["make", "install"], cwd=folder, env=env, check=True, capture_output=True)
    return folder, answers, env


def test_lifecycle_on_a_real_tracking_server(postgres, project, tmp_path):
    folder, answers, env = project
    backend, password = postgres
    package, prefix = answers["package_name"], answers["package_name"].upper()
    name = package.replace("_", "-")
    artifacts = tmp_path / "artifacts"
    port = free_port()
    server = subprocess.Popen(
        [str(folder / ".venv/bin/mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", backend, "--artifacts-destination", artifacts.as_uri(),
         "--workers", "1"],
        env=env | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "mlflow-server.log", "w"),  # noqa: SIM115
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    run_env = env | {
        "MLFLOW_TRACKING_URI": uri,
        f"{prefix}_MODELS_DIR": str(tmp_path / "models"),
        f"{prefix}_REPORTS_DIR": str(tmp_path / "reports"),
    }

    def cli(*args: str, expect: int = 0, **extra: str) -> str:
        result = subprocess.run(
            [str(folder / ".venv/bin" / package), *args],
            cwd=folder, env=run_env | extra, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == expect, f"{args} gave {result.returncode}:\n{output[-3000:]}"
        return output

    try:
        wait_until_answers(f"{uri}/health", server, timeout=120)

        assert "version 1" in cli("train")
        cli("evaluate", "--model-uri", f"models:/{name}@challenger")
        assert "version 1 promoted to champion" in cli("promote")

        # A second model trained on shuffled labels: worse, and refused by the gate.
        frame = (folder / "data" / "customers.csv").read_text().splitlines()
        header, rows = frame[0], frame[1:]
        labels = [row.rsplit(",", 1)[1] for row in rows]
        labels = labels[1:] + labels[:1]  # every row takes its neighbour's label
        shuffled = tmp_path / "shuffled.csv"
        shuffled.write_text(
            "\n".join(
                [
                    header,
                    *(r.rsplit(",", 1)[0] + "," + y for r, y in zip(rows, labels, strict=True)),
                ]
            )
        )
        assert "version 2" in cli("train", **{f"{prefix}_DATA_PATH": str(shuffled)})
        refusal = cli("promote", expect=1)
        assert "version 2 refused" in refusal and "does not beat the champion" in refusal

        tags = dict(
            _query(
                password,
                f"SELECT key, value FROM model_version_tags WHERE version = 2 AND name = '{name}'",
            )
        )
        print("\npromotion tags of the refused challenger:")
        for key in sorted(k for k in tags if k.startswith("promotion.")):
            print(f"  {key} = {tags[key]}")
        assert tags["promotion.decision"] == "refused" and tags["promotion.champion"] == "1"

        aliases = f"SELECT alias, version FROM registered_model_aliases WHERE name = '{name}'"
        assert sorted(_query(password, aliases)) == [["challenger", "2"], ["champion", "1"]]
        versions = f"SELECT count(*) FROM model_versions WHERE name = '{name}'"
        assert _query(password, versions) == [["2"]]
        assert _query(password, "SELECT count(*) FROM runs WHERE status = 'FINISHED'") == [["2"]]
        manifests = list(artifacts.rglob("serving/serving.json"))
        assert len(manifests) == 2 and all((m.parent / "model.onnx").is_file() for m in manifests)

        # The service pulls @champion from the server and answers with version 1.
        service_port = free_port()
        service = subprocess.Popen(
            [str(folder / ".venv/bin" / package), "serve", "--port", str(service_port)],
            cwd=folder, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_answers(f"http://127.0.0.1:{service_port}/ready", service, timeout=180)
            url = f"http://127.0.0.1:{service_port}/predict"
            answer = post_json(url, readme_example(folder))
            assert answer["model_version"] == "1" and len(answer["predictions"]) == 1
        finally:
            service.terminate()
            service.wait(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=60)

    # With the server down, training stops at once and nothing is registered.
    started = time.monotonic()
    failure = cli("train", expect=2)
    assert "cannot reach the tracking server" in failure and "Traceback" not in failure
    assert time.monotonic() - started < 60
    assert _query(password, f"SELECT count(*) FROM model_versions WHERE name = '{name}'") == [["2"]]


def test_two_tune_workers_share_one_study_on_postgresql(postgres, project, tmp_path):
    """Two `tune` processes on one study: between them they run the trials asked for (one
    more at most, started by the other while the total was reached), each trial once, each
    an MLflow child run of its own worker's parent run."""
    folder, answers, env = project
    _, password = postgres
    package, prefix = answers["package_name"], answers["package_name"].upper()
    storage = f"postgresql://{USER}:{password}@127.0.0.1:5432/{OPTUNA_DATABASE}"
    trials = 12
    started = time.monotonic()
    command = [str(folder / ".venv/bin" / package), "tune", "--trials", str(trials),
               "--storage", storage, "--study", "shared"]  # fmt: skip

    def start(worker: int) -> subprocess.Popen:
        own = {
            f"{prefix}_TRACKING_URI": f"sqlite:///{tmp_path}/worker{worker}.db",
            f"{prefix}_ARTIFACT_LOCATION": str(tmp_path / f"artifacts{worker}"),
            f"{prefix}_TUNED_PARAMS_PATH": str(tmp_path / f"tuned{worker}.json"),
            f"{prefix}_CV_FOLDS": "3",
        }
        return subprocess.Popen(
            command, cwd=folder, env=env | own,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    workers = [start(worker) for worker in (1, 2)]
    outputs = [worker.communicate(timeout=900)[0] for worker in workers]
    seconds = time.monotonic() - started
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
        assert "  trial " in output, f"a worker ran no trial:\n{output[-2000:]}"
    rows = _query(password, "SELECT number, state FROM trials ORDER BY number", OPTUNA_DATABASE)
    numbers = [int(number) for number, _ in rows]
    assert numbers == list(range(len(rows))) and trials <= len(rows) <= trials + 1, rows
    assert {state for _, state in rows} <= {"COMPLETE", "PRUNED"}, rows  # none lost
    run_ids = _query(
        password, "SELECT value_json FROM trial_user_attributes WHERE key = 'run_id'",
        OPTUNA_DATABASE,
    )  # fmt: skip
    assert len({run_id for (run_id,) in run_ids}) == len(rows)  # a child run each, none twice
    best = _query(password, "SELECT max(value) FROM trial_values", OPTUNA_DATABASE)[0][0]
    written = [json.loads((tmp_path / f"tuned{worker}.json").read_text()) for worker in (1, 2)]
    assert max(tuned["value"] for tuned in written) == pytest.approx(float(best))
    print(
        f"\ntwo tune workers on PostgreSQL: {len(rows)} trials in {seconds:.1f} s, "
        f"{len(rows) / seconds * 60:.0f} trials a minute (3 folds, with process start)"
    )
