"""The README's two commands on a stock Debian 12 machine (tests/fresh_root.py): `make demo`
renders the defaults, trains, serves and answers, printing what the quickstart shows and no
error line; then the project it made passes its own `make test` (its load tests left to
tests/test_run.py, which runs them alone) and `make lint` there.

The root's `make test` is not run inside (it is this suite). Where no fresh root can be made
(not root, no debootstrap), the same commands run on this machine instead, saying so loudly;
the check that the machine is stock is then skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from fresh_root import FreshRoot, unavailable

from docs_site import course_steps, stable_lines
from harness import ROOT, loud, tool

# One group: the tests share one root and one demo, made once on one process.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fresh-machine")]
MAKE_ERROR = re.compile(r"^make(\[\d+\])?: \*\*\*", re.MULTILINE)
LOGGED_TROUBLE = re.compile(r'"level": ?"(warning|error|critical)"')


class ThisMachine:
    """This machine, with the repository's uv first on PATH (as for .ci/run)."""

    repository = str(ROOT)

    def run(self, command: str, cwd: str, timeout: float = 1800) -> tuple[int, str, float]:
        env = {**os.environ, "PATH": f"{Path(tool('uv')).parent}{os.pathsep}{os.environ['PATH']}"}
        env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    if reason := unavailable():
        loud(f"NO FRESH DEBIAN ROOT ({reason}): the two commands run on this machine instead")
        yield ThisMachine()
        return
    root = FreshRoot(tmp_path_factory.mktemp("fresh"), pythons=("3.12",))
    try:
        root.repository = root.copy_repository()
        yield root
    finally:
        root.close()


@pytest.fixture(scope="module")
def demo(machine) -> tuple[str, float]:
    """What `make demo` printed, and the seconds it took."""
    status, output, seconds = machine.run("make demo", machine.repository)
    assert status == 0, output[-6000:]
    return output, seconds


def test_the_machine_is_a_stock_debian(machine):
    if not isinstance(machine, FreshRoot):
        pytest.skip("NO FRESH DEBIAN ROOT on this machine (see the warning above)")
    status, output, _ = machine.run(
        "cat /etc/debian_version; command -v uv pyenv pip3 chromium java || true", "/"
    )
    version, *found = output.split()
    assert status == 0 and version.startswith("12."), output
    assert found == [], f"not a stock machine: {found}"


def test_make_demo_serves_a_prediction_and_ends_cleanly(demo):
    output, seconds = demo
    print(f"make demo: {seconds:.1f} s")
    print(output[output.index("Metrics of the model") - 20 :])
    assert "==> train --promote: uv run --frozen customer_churn train --promote" in output
    assert '"predictions"' in output
    assert not MAKE_ERROR.search(output), "a make error line"
    assert "Traceback" not in output
    assert not LOGGED_TROUBLE.search(output), LOGGED_TROUBLE.search(output).string[-3000:]
    shown = next(
        text for commands, text in course_steps("quickstart.md") if commands == ["make demo"]
    )
    # The quickstart shows the last lines; only the id, the figures and the folder vary.
    unseen = stable_lines(shown) - stable_lines(output)
    assert not unseen, f"make demo did not print {sorted(unseen)}"


def test_the_demo_project_passes_its_own_tests(machine, demo):
    """The default rendering, as `make demo` left it, passes the two commands of its README
    that check it (`make test`, `make lint`)."""
    output, _ = demo
    project = re.search(r"^The project: (\S+)$", output, re.MULTILINE).group(1)
    # The load tests left out: they time the service under load, so they run alone, after
    # the rest (tests/test_run.py).
    status, output, seconds = machine.run(
        "PYTEST_ADDOPTS=\"-m 'not load'\" make test && make lint", project
    )
    print(f"the default rendering's make test and make lint: {seconds:.1f} s")
    assert status == 0, output[-6000:]
    assert " passed" in output and " failed" not in output
