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
from kubernetes_standin import run_rollout

from harness import (
    browse,
    chromium,
    free_port,
    install_rendering,
    loud,
    python_for,
    read_answers,
    wait_for,
    wait_until_answers,
)

# One process runs the module, in order: the run-level tests share one rollout and the
# dashboard shows what the shadow test left (`make test` hands a group to one process).
pytestmark = pytest.mark.xdist_group("rollout")

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


# What the page's charts hold, read in the browser: per chart, how much was drawn (the page sets
# data-drawn), the bars with a height or width, the points of the lines, the empty-state texts.
CHARTS = """Object.fromEntries([...document.querySelectorAll("svg.chart")].map((chart) => [
  chart.id.replace("chart-", ""),
  {
    drawn: Number(chart.dataset.drawn),
    bars: [...chart.querySelectorAll("rect.bar")].map((bar) => ({
      group: bar.dataset.group || bar.dataset.column || "",
      size: Math.max(Number(bar.getAttribute("height")), Number(bar.getAttribute("width"))),
      title: bar.textContent,
    })),
    lines: Object.fromEntries([...chart.querySelectorAll("path.series")].map(
      (path) => [path.dataset.series, (path.getAttribute("d").match(/[ML]/g) || []).length])),
    empty: [...chart.querySelectorAll("text.empty")].map((text) => text.textContent),
    text: [...chart.querySelectorAll("text")].map((text) => text.textContent).join(" | "),
  },
]))"""
# The charts and the data they were drawn from, read at once (the page refreshes on its own).
DRAWN = f"() => ({{ charts: {CHARTS}, data: lastData }})"
# The data without monitoring results, traffic, training distribution or challenger: each chart
# must say so rather than fail.
EMPTY = """() => {
  const data = structuredClone(lastData);
  data.drift = null;
  data.comparison = null;
  data.timeline = { points: [], interval_seconds: 5, span_seconds: 0, outcomes: {} };
  data.distribution.training = null;
  data.distribution.recent = {};
  data.rollout.mode = "single";
  data.models.challenger = null;
  show(data);
  return CHARTS;
}""".replace("CHARTS", CHARTS)


@pytest.mark.slow
def test_the_dashboard_works_in_headless_chromium(rollout):
    executable = chromium()
    base = rollout["base"]
    wait_for(lambda: _data(base)["models"]["challenger"], 120, "the challenger to load")
    # Traffic of its own, so that the charts of the last minutes have something to draw; at a
    # gentle rate, so that the page's first requests are not shed as an overload.
    sent = rollout["cli"]("simulate", "--url", base, "--requests", "120", "--rate", "40")
    assert "sent 120 requests" in sent
    with urllib.request.urlopen(f"{base}/dashboard", timeout=10) as response:
        page_bytes = len(response.read())
    steps = f"""
errors = []
page.on("pageerror", lambda error: errors.append(str(error)))
page.goto({base + "/dashboard"!r})
# No key yet: the data is refused (the page asks again every few seconds).
page.wait_for_function("document.querySelector('#status').innerText.includes('API key')")
seen["before_key"] = page.inner_text("#status")
page.fill("#api-key", {API_KEY!r})
page.dispatch_event("#api-key", "change")
page.wait_for_selector("#predict-form button")
page.wait_for_function("document.querySelector('#models-body').innerText.includes('challenger')")
# Drawn with data: the timeline's lines, the bars of both variants, the agreement.
page.wait_for_function(
    "lastData && lastData.timeline.points.some((p) => p.requests > 0)"
    " && Number(document.querySelector('#chart-rollout').dataset.drawn)"
    " === 2 * lastData.distribution.keys.length",
    timeout=30000,
)
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
seen["traffic"] = page.inner_text("#traffic-figures")
seen["drift"] = page.inner_text("#drift-body")
seen["drawn"] = page.evaluate({DRAWN!r})
page.screenshot(path={str(SCREENSHOT)!r}, full_page=True)
seen["empty"] = page.evaluate({EMPTY!r})
seen["errors"] = errors
"""
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    seen = browse(rollout["folder"], rollout["env"], executable, steps)
    print(f"\ndashboard screenshot: {SCREENSHOT} ({SCREENSHOT.stat().st_size} bytes)")
    print(f"dashboard page: {page_bytes} bytes")
    assert seen["errors"] == [], "the page raised errors"
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
    charts = seen["drawn"]["charts"]
    _assert_the_charts_are_drawn(charts, seen["drawn"]["data"])
    assert {name: chart["empty"] != [] for name, chart in seen["empty"].items()} == {
        name: True for name in charts
    }, "without data, every chart says so"
    assert SCREENSHOT.stat().st_size > 30_000


def _assert_the_charts_are_drawn(charts: dict, data: dict) -> None:
    """Each chart drew the series the data holds, and shows no empty state."""
    assert all(chart["empty"] == [] for chart in charts.values()), charts
    points = data["timeline"]["points"]
    assert charts["rate"]["drawn"] == charts["latency"]["drawn"] == len(points) >= 2
    assert charts["rate"]["lines"]["rate"] == len(points)  # a rate for every interval
    assert charts["latency"]["lines"]["p50_ms"] >= 1 and charts["latency"]["lines"]["p99_ms"] >= 1
    assert max(point["rate"] for point in points) > 0
    # The predictions: the training share and the last minutes' of each class, with a height.
    classes = data["distribution"]["keys"]
    bars = charts["distribution"]["bars"]
    recent = bars[-1]["group"]
    assert {bar["group"] for bar in bars} == {"training", recent} and recent.startswith("last ")
    assert len(bars) == 2 * len(classes) and sum(bar["size"] > 0 for bar in bars) >= 2
    # Drift: a bar per feature and the predictions, named as the drift job names them.
    verdicts = [*data["drift"]["features"], data["drift"]["prediction"]["name"]]
    assert sorted(bar["group"] for bar in charts["drift"]["bars"]) == sorted(verdicts)
    assert "threshold" in charts["drift"]["text"]
    # Rollout: both variants' outputs, and the agreement the monitoring job measured.
    variants = [bar["group"] for bar in charts["rollout"]["bars"]]
    assert sorted(set(variants)) == ["challenger", "champion"] and len(variants) == 2 * len(classes)
    (agreement,) = charts["agreement"]["bars"]
    assert agreement["size"] > 0 and "100.0% of 300 shadowed records agree" in agreement["title"]


@pytest.mark.slow
def test_the_deploy_script_pins_the_image_smoke_tests_and_rolls_back(rollout, kustomize, tmp_path):
    """deploy/rollout.sh against the served rendering, the cluster's side a stand-in (no
    cluster can run here; see kubernetes_standin): kustomize, the service and the smoke test
    are real."""
    if kustomize is None:
        pytest.skip("NO KUSTOMIZE HERE: deploy/rollout.sh builds the overlay with it")
    loud("NO KUBERNETES CLUSTER CAN RUN HERE: kubectl's cluster calls are a recording stand-in")
    folder, env = rollout["folder"], rollout["env"]
    slug = read_answers(folder)["package_name"].replace("_", "-")
    image = f"ghcr.io/acme/{slug}@sha256:{'5e' * 32}"
    port = int(rollout["base"].rsplit(":", 1)[1])

    def deploy(name, arguments, **state):
        return run_rollout(
            folder, env, tmp_path / name, arguments, kustomize=kustomize,
            namespace=f"{slug}-staging",
            service_port=port, smoke_port=free_port(), **state,
        )  # fmt: skip

    def verbs(result):
        return [" ".join(call[2:4] if call[0] == "-n" else call[:2]) for call in result.calls]

    good = deploy("good", ["staging", image, "1"])
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines()[-1] == "model version: 1"
    assert f"image: {image}" in good.applied and f"namespace: {slug}-staging" in good.applied
    assert "rollout undo" not in verbs(good)
    assert not list((folder / "deploy/k8s/overlays").glob(".pinned-*")), "the layer is left"

    wrong = deploy("wrong-version", ["staging", image, "2"])
    assert wrong.returncode == 1
    assert "serves model version 1, not the expected 2" in wrong.stderr
    assert verbs(wrong)[-2:] == ["rollout undo", "rollout status"]
    assert "rolled staging back to revision 1" in wrong.stderr

    stuck = deploy("not-ready", ["staging", image], rollout_ready=False)
    assert stuck.returncode == 1 and "not ready within 20s" in stuck.stderr
    assert "port-forward service/" + slug not in " ".join(verbs(stuck)), "no smoke test"
    assert "rollout undo" in verbs(stuck)

    first = deploy("first", ["staging", image], revision="", rollout_ready=False)
    assert first.returncode == 1 and "nothing to roll back to" in first.stderr
    assert "rollout undo" not in verbs(first)

    for arguments, problem in (
        (["staging", f"ghcr.io/acme/{slug}:v1.0.0"], "the image must be pinned by digest"),
        (["qa", image], "no overlay for 'qa'"),
    ):
        refused = deploy("refused", arguments)
        assert refused.returncode == 2 and refused.calls == [], refused.stderr
        assert refused.stderr.strip().startswith(f"error: {problem}"), refused.stderr
