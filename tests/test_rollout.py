"""Rollouts and the dashboard of the rendered service.

Render level (fast): the dashboard ships inside the package, so the wheel and the serving image
carry it, and it fetches nothing from outside the service.

Run level (slow): in the default rendering, train and promote version 1, train version 2 (the
challenger), serve both from their registry aliases in shadow mode behind an API key, send
the simulator's traffic, let the monitoring job compare the variants, and drive the dashboard
in headless Chromium: it shows both models and the comparison, a prediction sent through its
form shows its answer, and a screenshot is kept.
"""

import json
import re
import tomllib
import urllib.request
from pathlib import Path

import pytest

from harness import (
    browse,
    chromium,
    free_port,
    install_rendering,
    python_for,
    read_answers,
    wait_for,
    wait_until_answers,
)

SCREENSHOT = Path("/tmp/copier-mlops-artifacts/dashboard.png")
API_KEY = "dashboard-test-key"


def test_the_dashboard_ships_inside_the_package(rendered):
    folder = rendered("defaults")
    package = read_answers(folder)["package_name"]
    page = (folder / "src" / package / "service" / "dashboard.html").read_text()
    wheel = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert f"src/{package}" in wheel["targets"]["wheel"]["packages"]
    # Served by the service itself: every address it uses is one of the service's own paths.
    assert not re.search(r"https?://", page), "the page must not load anything from elsewhere"
    fetched = set(re.findall(r'fetch\("([^"]+)"', page))
    assert fetched == {"/dashboard/data", "/openapi.json", "/predict"}
    routes = (folder / "src" / package / "service" / "routes" / "__init__.py").read_text()
    assert "dashboard.router" in routes


@pytest.fixture(scope="module")
def rollout(workspace, tmp_path_factory):
    """The default rendering serving champion (v1) and challenger (v2) in shadow mode."""
    folder = workspace("defaults")
    answers = read_answers(folder)
    if python_for(answers["python_version"]) is None:
        pytest.skip(f"NO PYTHON {answers['python_version']} HERE: cannot install the rendering")
    work = tmp_path_factory.mktemp("rollout")
    slug = answers["package_name"].replace("_", "-")
    project = install_rendering(
        folder,
        work,
        MODEL_URI=f"models:/{slug}@champion",
        CHALLENGER_URI=f"models:/{slug}@challenger",
        ROLLOUT_MODE="shadow",
        API_KEY=API_KEY,
        ACCESS_LOG="false",
    )
    cli = project.cli
    cli("train")
    assert "promoted to champion" in cli("promote")
    cli("train")  # version 2 carries the challenger alias
    port = free_port()
    service = project.serve(port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}/ready", service, timeout=180)
        yield {"folder": folder, "work": work, "cli": cli, "base": base, "env": project.env}
    finally:
        service.terminate()
        service.wait(timeout=30)


def _data(base: str) -> dict:
    request = urllib.request.Request(f"{base}/dashboard/data", headers={"x-api-key": API_KEY})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_shadow_rollout_from_registry_aliases_is_compared_online(rollout):
    base, cli, work = rollout["base"], rollout["cli"], rollout["work"]

    def both_loaded():
        models = _data(base)["models"]
        return models["challenger"] is not None and models

    models = wait_for(both_loaded, 120, "the challenger to load from the registry")
    assert (models["champion"]["version"], models["challenger"]["version"]) == ("1", "2")

    sent = cli("simulate", "--url", base, "--requests", "300")
    assert "sent 300 requests (300 records answered)" in sent
    report = cli("monitor")
    comparison = json.loads((work / "logs/monitoring/rollout.json").read_text())
    print("\n" + report)
    assert comparison["agreement"]["pairs"] == 300
    assert comparison["variants"]["champion"]["version"] == "1"
    assert comparison["variants"]["challenger"]["version"] == "2"
    # Version 2 is trained on the same data with the same seed: it agrees everywhere.
    assert comparison["agreement"]["rate"] == 1.0 and comparison["verdict"]["may_promote"]
    assert "rollout: the challenger (version 2) may be promoted" in report
    drift = json.loads((work / "logs/monitoring/drift.json").read_text())
    assert drift["window"] == 300, "the drift job reads what callers saw, not the shadow scores"


@pytest.mark.slow
def test_the_dashboard_works_in_headless_chromium(rollout):
    executable = chromium()
    base = rollout["base"]
    steps = f"""
page.goto({base + "/dashboard"!r})
page.wait_for_selector("#status.bad")  # no key yet: the data is refused
seen["before_key"] = page.inner_text("#status")
page.fill("#api-key", {API_KEY!r})
page.dispatch_event("#api-key", "change")
page.wait_for_selector("#predict-form button")
page.wait_for_function("document.querySelector('#models-body').innerText.includes('challenger')")
seen["title"] = page.inner_text("#title")
seen["models"] = page.inner_text("#models-body")
seen["rollout"] = page.inner_text("#rollout-body")
page.fill("#rollout-key", "customer-42")
page.click("#predict-form button")
page.wait_for_selector("#result.ok", timeout=15000)
seen["result"] = page.inner_text("#result")
request_id = seen["result"].rsplit(" ", 1)[-1]
# Two rows: the champion's answer, and the shadow's score, logged a moment after it.
page.wait_for_function(
    "id => document.querySelector('#recent-body').innerText.split(id).length > 2",
    arg=request_id,
)
seen["recent"] = page.inner_text("#recent-body")
seen["traffic"] = page.inner_text("#traffic-body")
seen["drift"] = page.inner_text("#drift-body")
page.screenshot(path={str(SCREENSHOT)!r}, full_page=True)
"""
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    seen = browse(rollout["folder"], rollout["env"], executable, steps)
    print(f"\ndashboard screenshot: {SCREENSHOT} ({SCREENSHOT.stat().st_size} bytes)")
    assert "API key" in seen["before_key"]
    assert seen["title"].endswith("dashboard")
    assert "champion" in seen["models"] and "version 2" in seen["models"]
    assert "mode shadow" in seen["rollout"]
    answer = r"prediction [01] \(probability [01]\.\d+\) from the champion, version 1"
    assert re.search(answer, seen["result"])
    request_id = seen["result"].rsplit(" ", 1)[-1]
    assert f"{request_id}\tchampion\t1" in seen["recent"]
    assert f"{request_id}\tchallenger (shadow)\t2" in seen["recent"]
    assert "/predict requests" in seen["traffic"]
    assert "window of 300 records" in seen["drift"], "the drift job ran in the test before"
    assert SCREENSHOT.stat().st_size > 30_000
