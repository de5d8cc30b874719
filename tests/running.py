"""A rendering installed in its own environment and run: its command line, its service over
HTTP, its pages in a headless browser."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from programs import project_env, tool
from rendering import read_answers


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
