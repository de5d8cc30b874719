"""Run a rendering's deploy/rollout.sh where no Kubernetes cluster can run.

No cluster can be started on these machines (no kind or k3s image can be pulled), so the
cluster's side of `kubectl` is a stand-in: `kubectl kustomize` runs a real kustomize (the
manifests applied are really built; the `kustomize` fixture finds one), while `apply`, `get`,
`rollout` and `port-forward` are answered from a small state and recorded. `port-forward`
forwards for real, to a service running on loopback, so the smoke test the script runs
reaches a real service.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

STANDIN = """\
import json, os, socket, subprocess, sys, threading
from pathlib import Path

state = json.loads(Path(os.environ["STANDIN_STATE"]).read_text())
args = sys.argv[1:]
with open(os.environ["STANDIN_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[0] == "kustomize":
    os.execv(state["kustomize"][0], [*state["kustomize"], *args[1:]])
if args[:2] == ["-n", state["namespace"]]:
    args = args[2:]
elif args[0] != "apply":
    sys.exit(f"stand-in kubectl: unexpected namespace in {sys.argv[1:]}")
if args[0] == "apply":
    built = subprocess.run([*state["kustomize"], args[2]], capture_output=True, text=True)
    Path(os.environ["STANDIN_APPLIED"]).write_text(built.stdout)
    sys.exit(built.returncode)
if args[0] == "get":
    print(state["revision"], end="")
elif args[:2] == ["rollout", "status"]:
    sys.exit(0 if state["rollout_ready"] else 1)
elif args[0] == "port-forward":
    local = int(args[2].split(":")[0])

    def pipe(source, sink):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.close()

    listener = socket.create_server(("127.0.0.1", local))
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", state["service_port"]))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()
elif args[:2] != ["rollout", "undo"]:
    sys.exit(f"stand-in kubectl: no answer for {sys.argv[1:]}")
"""


@dataclass
class Rollout:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]
    applied: str


def run_rollout(
    project: Path,
    env: dict,
    folder: Path,
    arguments: list[str],
    *,
    kustomize: list[str],
    namespace: str,
    service_port: int,
    smoke_port: int,
    revision: str = "1",
    rollout_ready: bool = True,
) -> Rollout:
    """Run `deploy/rollout.sh ARGUMENTS` in `project` against the stand-in cluster."""
    kustomize = [shutil.which(kustomize[0]) or kustomize[0], *kustomize[1:]]
    folder.mkdir(parents=True, exist_ok=True)
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n{STANDIN}")
    kubectl.chmod(0o755)
    state = {"kustomize": kustomize, "namespace": namespace, "revision": revision,
             "rollout_ready": rollout_ready, "service_port": service_port}  # fmt: skip
    paths = {name: folder / f"{name}.txt" for name in ("state", "calls", "applied")}
    paths["state"].write_text(json.dumps(state))
    for name in ("calls", "applied"):
        paths[name].write_text("")
    result = subprocess.run(
        [project / "deploy" / "rollout.sh", *arguments],
        cwd=project,
        env=env | {
            "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
            "SMOKE_PORT": str(smoke_port),
            "ROLLOUT_TIMEOUT": "20s",
            **{f"STANDIN_{name.upper()}": str(path) for name, path in paths.items()},
        },
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    calls = [json.loads(line) for line in paths["calls"].read_text().splitlines()]
    return Rollout(
        result.returncode, result.stdout, result.stderr, calls, paths["applied"].read_text()
    )
