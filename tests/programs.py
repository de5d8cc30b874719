"""The outside programs the tests run: found beside this interpreter or on PATH, installed
with apt-get when missing, run with a rendering's own Python."""

from __future__ import annotations

import ctypes.util
import glob
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path


def python_for(version: str) -> str | None:
    """Path of a Python `version` interpreter that uv can use, or None if there is none here.

    uv finds it (on PATH or among uv's own installs); where pyenv is installed, its versions
    are looked at too, since uv stops at a pyenv shim that cannot run the version asked for.
    """
    found = subprocess.run(
        [tool("uv"), "python", "find", "--no-python-downloads", version],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip()
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    pyenv_root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
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
    """Environment for commands run inside a rendering: its own Python, a shared uv cache.

    PYTHONDONTWRITEBYTECODE is dropped, as a user's shell does not set it: with it, every
    process of a rendering compiles its imports anew (measured: `promote` 17 s with it, 7 s
    without once the bytecode is written).
    """
    dropped = ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
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


def chromium() -> str:
    """Debian's Chromium for Playwright to drive, and libatomic1, which Playwright's driver
    (node) needs: each installed with apt-get when missing (a stock Debian has neither). The
    test is skipped, saying why, where they cannot be installed."""
    import pytest

    missing = [] if shutil.which("chromium") else ["chromium"]
    missing += [] if ctypes.util.find_library("atomic") else ["libatomic1"]
    if missing and (problem := apt_install(*missing)):
        pytest.skip(f"{' AND '.join(missing).upper()} COULD NOT BE INSTALLED: {problem[-1500:]}")
    return shutil.which("chromium") or "/usr/bin/chromium"


def run_checked(command: list[str], project: Path, env: dict, timeout: float = 1500) -> str:
    """Run `command` in `project`; return its output, or fail the test with the output's tail."""
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output
