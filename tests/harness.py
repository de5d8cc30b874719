"""Render and run projects from this template: shared by the tests, `make demo`, `make example`.

python tests/harness.py demo      render the defaults, train, serve, print one prediction
python tests/harness.py example   regenerate example_project/ from the default answers
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
ANSWERS_FILE = ".copier-answers.yml"
# Lines of the answers file that depend on where and from which commit a project was rendered.
PROVENANCE_KEYS = ("_commit", "_src_path")

# Copier commits uncommitted template changes in its clone: git needs an identity for that.
for _key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
    os.environ.setdefault(_key, "copier-mlops tests")
for _key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
    os.environ.setdefault(_key, "tests@copier-mlops.invalid")


def render(
    destination: Path, answers: dict | None = None, source: Path | None = None, **options
) -> Path:
    """Render the working tree of this repository (uncommitted changes included) with copier.

    `source` is a `template_snapshot` of it to render from instead: copier then reads the
    files in place rather than cloning this repository first (0.4 s less a rendering), and
    the answers file records no `_commit`.
    """
    from copier import run_copy

    run_copy(
        str(source or ROOT),
        str(destination),
        data=answers or {},
        defaults=True,
        # HEAD of a local repository includes its uncommitted changes
        vcs_ref=None if source else "HEAD",
        unsafe=False,
        quiet=True,
        **options,
    )
    return destination


def copy_template_files(destination: Path, paths: tuple[str, ...] | None = None) -> None:
    """Copy what copier reads (copier.yml and template/), or the top-level `paths`, from the
    working tree, uncommitted changes included and ignored files (caches) left out, into
    `destination`."""
    paths = paths or TEMPLATE_PATHS
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--")
    for name in filter(None, listed.split("\0")):
        if name.split("/")[0] in paths and (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)


def template_snapshot(destination: Path) -> Path:
    """A plain folder holding the template as it is now, for `render(..., source=...)`."""
    destination.mkdir(parents=True)
    copy_template_files(destination)
    return destination


def working_tree_repository(destination: Path, paths: tuple[str, ...]) -> Path:
    """A git repository of one commit holding `paths` as they are in the working tree.

    Copier renders a dirty repository by committing its changes in a clone of its own, and
    records that commit, which no later `copier update` can find; a user's clone is clean.
    Rendering from this repository is what a user's clone of the working tree would give.
    """
    destination.mkdir(parents=True)
    copy_template_files(destination, paths)
    commit_all(destination, "copier-mlops (working tree)")
    return destination


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its output; a failure raises with git's message."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout


def commit_all(project: Path, message: str) -> None:
    """Stage and commit everything in `project`, making it a git repository if it is not one."""
    if not (project / ".git").exists():
        git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "--no-verify", "-m", message)


# Release tags of the template repository made by `template_repository`, and what it holds.
OLD_VERSION, NEW_VERSION = "0.0.1", "0.0.2"
TEMPLATE_PATHS = ("copier.yml", "template")


# Release 0.1.0, the last with the flat package layout: where a clone holds no release tags,
# the update tier still starts from it.
RELEASE_0_1_0 = "a2c37c0475405a659c338a9d198ae940199d9e5a"


def older_template_commit(repository: Path) -> str:
    """The commit to update from: the newest release before HEAD whose template differs from
    HEAD's, or, in a clone without release tags, release 0.1.0."""
    releases = []
    for tag in git(repository, "tag", "--merged", "HEAD").split():
        try:
            version = Version(tag)
        except InvalidVersion:
            continue
        if not version.is_prerelease:
            releases.append((version, tag))
    for _, tag in sorted(releases, reverse=True):
        differs = subprocess.run(
            ["git", "diff", "--quiet", tag, "HEAD", "--", *TEMPLATE_PATHS],
            cwd=repository,
            check=False,
        )
        if differs.returncode == 1:
            return git(repository, "rev-list", "-n", "1", tag).strip()
    return RELEASE_0_1_0


def template_repository(destination: Path) -> Path:
    """A template repository of two releases, for `copier update` tests; no network is used.

    Its first commit is the template (copier.yml and template/) at `older_template_commit` of
    this repository, tagged OLD_VERSION; the second is the template in this working tree,
    uncommitted changes included (as `render` sees it), tagged NEW_VERSION. Holding only what
    copier reads keeps copier's own clones of it small; no other tag can be the newest.
    """
    destination.mkdir(parents=True)
    older = older_template_commit(ROOT)
    archive = destination.parent / f"{destination.name}-older.tar"
    git(ROOT, "archive", "-o", str(archive), older, "--", *TEMPLATE_PATHS)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(destination)], check=True)
    archive.unlink()
    commit_all(destination, f"copier-mlops {older}")
    git(destination, "tag", OLD_VERSION)
    shutil.rmtree(destination / "template")
    copy_template_files(destination)
    git(destination, "add", "-A")
    git(destination, "commit", "-q", "--no-verify", "--allow-empty", "-m", "copier-mlops now")
    git(destination, "tag", NEW_VERSION)
    return destination


def update(project: Path, data: dict | None = None) -> None:
    """`copier update` to the newest release, as a user runs it, then commit the result.

    Conflicts are left inline in the files (see `merge_leftovers`), as copier does by default.
    """
    from copier import run_update

    run_update(
        str(project),
        data=data or {},
        defaults=True,
        overwrite=True,
        conflict="inline",
        quiet=True,
        unsafe=False,
    )
    commit_all(project, "Update from the template")


def project_files(project: Path) -> dict[str, bytes]:
    """Every file of `project` but git's, by relative path; the answers file without the
    lines that say where and from which commit it was rendered."""
    files = {}
    for path in project.rglob("*"):
        relative = path.relative_to(project)
        if path.is_file() and relative.parts[0] != ".git":
            files[str(relative)] = path.read_bytes()
    provenance = re.compile(rf"(?m)^({'|'.join(PROVENANCE_KEYS)}): .*\n".encode())
    files[ANSWERS_FILE] = provenance.sub(b"", files[ANSWERS_FILE])
    return files


CONFLICT_MARKER = re.compile(r"(?m)^(<{7}|>{7})( |$)")


def merge_leftovers(project: Path) -> list[str]:
    """Files of `project` that copier left a rejected hunk or an inline conflict in."""
    found = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] == ".git" or not path.is_file():
            continue
        if path.suffix == ".rej" or CONFLICT_MARKER.search(path.read_text(errors="replace")):
            found.append(str(relative))
    return found


def check_update(project: Path) -> dict:
    """What `copier check-update` reports for `project`, as its JSON output."""
    result = subprocess.run(
        [tool("copier"), "check-update", "--output-format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"copier check-update failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout)


def python_for(version: str) -> str | None:
    """Path of a Python `version` interpreter that uv can use, or None if there is none here."""
    found = subprocess.run(
        [tool("uv"), "python", "find", "--no-python-downloads", version],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip()
    pyenv_root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
    if pyenv_root.returncode == 0:
        pattern = f"{pyenv_root.stdout.strip()}/versions/{version}*/bin/python{version}"
        candidates = sorted(glob.glob(pattern))
        if candidates:
            return candidates[-1]
    return None


def tool(name: str) -> str:
    """A command installed next to this interpreter (the repository's .venv), else on PATH.

    The .venv's uv comes first: a uv installed under pyenv is a shim that fails inside a
    rendering, whose .python-version may name a Python pyenv does not select.
    """
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def project_env(python_version: str) -> dict[str, str]:
    """Environment for commands run inside a rendering: its own Python, a shared uv cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    env["PATH"] = f"{Path(tool('uv')).parent}{os.pathsep}{env.get('PATH', '')}"
    interpreter = python_for(python_version)
    if interpreter:
        env["UV_PYTHON"] = interpreter
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", UV_NO_PROGRESS="1")
    return env


def loud(message: str) -> None:
    """A message that must not get lost among the passing tests."""
    line = "!" * 78
    print(f"\n{line}\n!! {message}\n{line}", file=sys.stderr, flush=True)
    warnings.warn(message, stacklevel=2)


def apt_install(*packages: str) -> str | None:
    """Install Debian packages; None when done, else why they could not be installed."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing Debian packages needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y"]
    install += ["--no-install-recommends", *packages]
    for attempt_number in range(2):
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return None
        if attempt_number == 0:  # perhaps stale package lists
            update = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"]
            subprocess.run(update, env=env, capture_output=True, check=False)
    return f"apt-get install {' '.join(packages)} failed:\n{result.stderr[-2000:]}"


def run_checked(command: list[str], project: Path, env: dict, timeout: float = 1500) -> str:
    """Run `command` in `project`; return its output, or fail the test with the output's tail."""
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output


def read_answers(project: Path) -> dict:
    return yaml.safe_load((project / ANSWERS_FILE).read_text())


def regenerate_example() -> Path:
    """Render the default answers into example_project/, keeping its copyright year.

    Only from a committed template: a rendering of uncommitted changes would record a
    `_commit` that exists nowhere but in copier's temporary clone.
    """
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "copier.yml", "template"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if dirty:
        raise SystemExit(f"commit the template first; uncommitted changes:\n{dirty}")
    answers = {}
    if (EXAMPLE / ANSWERS_FILE).exists():
        answers["copyright_year"] = read_answers(EXAMPLE)["copyright_year"]
    with tempfile.TemporaryDirectory() as scratch:
        fresh = render(Path(scratch) / "example", answers)
        answers_path = fresh / ANSWERS_FILE
        # The rendering records this clone's path; point it at the template one level up instead.
        answers_path.write_text(
            re.sub(r"(?m)^_src_path: .*$", "_src_path: ..", answers_path.read_text())
        )
        shutil.rmtree(EXAMPLE, ignore_errors=True)
        shutil.copytree(fresh, EXAMPLE)
    return EXAMPLE


@dataclass
class Installed:
    """A rendering installed in its own environment, its paths pointed into a work folder."""

    folder: Path
    package: str
    work: Path
    env: dict[str, str]

    @property
    def slug(self) -> str:
        return self.package.replace("_", "-")

    def cli(self, *args: str, expect: int = 0) -> str:
        """Run the project's command line; fail with its output unless it exits `expect`."""
        result = subprocess.run(
            [str(self.folder / ".venv/bin" / self.package), *args],
            cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == expect, f"{args} gave {result.returncode}:\n{output[-3000:]}"
        return output

    def serve(self, port: int) -> subprocess.Popen:
        """Start `serve` on loopback; its log goes to service.log in the work folder."""
        return subprocess.Popen(
            [str(self.folder / ".venv/bin" / self.package), "serve", "--port", str(port)],
            cwd=self.folder, env=self.env, stdout=subprocess.DEVNULL,
            stderr=open(self.work / "service.log", "w"),  # noqa: SIM115
        )  # fmt: skip


def install_rendering(folder: Path, work: Path, **settings: str) -> Installed:
    """`make install` a rendering, with its store, models, reports and logs under `work` and
    `settings` (FIELD=value, without the package prefix) in its environment."""
    answers = read_answers(folder)
    package = answers["package_name"]
    prefix = package.upper()
    paths = {
        "TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "ARTIFACT_LOCATION": str(work / "mlartifacts"),
        "MODELS_DIR": str(work / "models"),
        "REPORTS_DIR": str(work / "reports"),
        "PREDICTION_LOG_DIR": str(work / "logs" / "predictions"),
        "MONITORING_DIR": str(work / "logs" / "monitoring"),
    }
    env = project_env(answers["python_version"]) | {
        f"{prefix}_{name}": value for name, value in (paths | settings).items()
    }
    subprocess.run(["make", "install"], cwd=folder, env=env, check=True, capture_output=True)
    return Installed(folder, package, work, env)


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def browse(project: Path, env: dict, chromium: str, steps: str, timeout: float = 180) -> dict:
    """Run playwright `steps` in headless Chromium with the rendering's own interpreter.

    `steps` is Python with `page` (a 1200x900 page) at hand; it fills the dict `seen`, which is
    returned. Playwright is installed into the rendering's environment (it is not a dependency
    of the project); Debian's Chromium is driven, so no browser is downloaded.
    """
    python = project / ".venv/bin/python"
    subprocess.run(
        [tool("uv"), "pip", "install", "-q", "--python", str(python), "playwright"],
        cwd=project, env=env, check=True, capture_output=True,
    )  # fmt: skip
    indented = "\n".join(f"    {line}" for line in steps.strip().splitlines())
    script = f"""
import json
from playwright.sync_api import sync_playwright
seen = {{}}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path={chromium!r}, args={CHROMIUM_ARGS!r})
    page = browser.new_page(viewport={{"width": 1200, "height": 900}})
{indented}
    browser.close()
print(json.dumps(seen))
"""
    result = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"the browser script failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_for(check, timeout: float, what: str):
    """Poll `check()` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_json(url: str, payload) -> dict:
    """POST `payload` as JSON and return the decoded JSON answer (HTTP errors raise)."""
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def readme_example(project: Path) -> dict:
    """The example request the rendered README shows with curl."""
    readme = (project / "README.md").read_text()
    return json.loads(re.search(r"-d '(\{.*\})'", readme).group(1))


def wait_until_answers(url: str, process: subprocess.Popen | None, timeout: float) -> float:
    """Poll `url` until it answers 2xx; return the seconds it took.

    Fails early if `process` (the server) exits, and after `timeout` seconds otherwise.
    """
    started = time.monotonic()
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return time.monotonic() - started
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{process.args} exited with {process.returncode}") from None
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.05)


def demo(destination: Path | None = None) -> None:
    """Render the defaults, run the rendered README's `make run`, send its example request, stop."""
    destination = destination or Path(tempfile.mkdtemp(prefix="copier-mlops-demo-")) / "project"
    print(f"==> rendering the default answers into {destination}", flush=True)
    project = render(destination)
    answers = read_answers(project)
    port = free_port()
    env = project_env(answers["python_version"])
    env[f"{answers['package_name'].upper()}_PORT"] = str(port)
    print(f"==> make run (install, validate, train, register, serve on :{port})", flush=True)
    server = subprocess.Popen(["make", "run"], cwd=project, env=env, start_new_session=True)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/ready", server, timeout=900)
        payload = readme_example(project)
        print(f"==> POST /predict {json.dumps(payload)}", flush=True)
        answer = post_json(f"http://127.0.0.1:{port}/predict", payload)
        print(json.dumps(answer, indent=2), flush=True)
    finally:
        print("==> stopping the service (as Ctrl-C would)", flush=True)
        os.killpg(server.pid, signal.SIGINT)  # make, uv and the service share the group
        server.wait(timeout=60)
    print(f"==> done; the project is in {project}", flush=True)


if __name__ == "__main__":
    commands = {"demo": demo, "example": regenerate_example}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit(__doc__)
    commands[sys.argv[1]]()
