"""The documentation site: it builds strict, its links resolve, the question reference follows
copier.yml, every command the quickstart and the course guide show is run by a test, and the
home page renders in a real browser. The rendered project's own documentation builds too."""

from __future__ import annotations

import ast
import html
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from harness import (
    ROOT,
    project_env,
    read_answers,
    tool,
    wait_until_answers,
    working_tree_repository,
)

DOCS = ROOT / "docs"
MKDOCS_ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
COMMAND_BLOCK = re.compile(r"^ *```bash\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
# The flags that make Debian's Chromium render local pages here without reaching any network.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def _load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


def build_site(destination: Path, cwd: Path = ROOT) -> Path:
    result = subprocess.run(
        [tool("mkdocs"), "build", "--strict", "--site-dir", str(destination)],
        cwd=cwd,
        env=MKDOCS_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return destination


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("site") / "site")


def nav_pages(nav) -> list[str]:
    """The Markdown files of a mkdocs `nav`, in order."""
    pages = []
    for entry in nav:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def page_html(site: Path, page: str) -> Path:
    """The built file of a docs page: `how-to/update.md` -> `how-to/update/index.html`."""
    if page == "index.md":
        return site / "index.html"
    return site / page.removesuffix(".md") / "index.html"


def documented_commands(page: str) -> list[str]:
    """Every command in the page's bash blocks: one a line, comments dropped, `cd` left out
    (it only says where the next commands run)."""
    commands = []
    for block in COMMAND_BLOCK.findall((DOCS / page).read_text()):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith(("#", "cd ")):
                commands.append(command)
    return commands


# ----------------------------------------------------------------------------- the build


def test_every_page_is_in_the_nav_and_built(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = nav_pages(config["nav"])
    sources = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert sorted(pages) == sorted(sources), "a page is missing from mkdocs.yml's nav, or extra"
    for page in pages:
        assert page_html(site, page).is_file(), page


class _Anchors(HTMLParser):
    """The ids a page defines and the links it makes."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        target = attrs.get("href") if tag in ("a", "link") else attrs.get("src")
        if target and tag in ("a", "link", "img", "script"):
            self.links.append(target)


def test_internal_links_and_anchors_resolve(site):
    pages = {path: _Anchors() for path in site.rglob("*.html")}
    for path, parser in pages.items():
        parser.feed(path.read_text())
    checked, broken = 0, []
    for path, parser in pages.items():
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("data:"):
                continue
            if not parts.path:
                target = path
            elif parts.path.startswith("/"):  # 404.html links from the site's root
                target = (site / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: {link} (no such file)")
            elif parts.fragment and target in pages and parts.fragment not in pages[target].ids:
                broken.append(f"{path.relative_to(site)}: {link} (no such anchor)")
    assert checked > 100 and not broken, "\n".join(broken)


def test_the_site_names_no_outside_script_or_font(site):
    """Everything a page loads comes with the site: it renders offline."""
    for path in site.rglob("*.html"):
        parser = _Anchors()
        parser.feed(path.read_text())
        outside = [link for link in parser.links if re.match(r"https?://", link)]
        loaded = [link for link in outside if re.search(r"\.(js|css|woff2?)(\?|$)", link)]
        assert not loaded, f"{path.relative_to(site)} loads {loaded}"


def test_the_architecture_diagram_names_every_stage():
    svg = (DOCS / "assets" / "architecture.svg").read_text()
    stages = re.findall(r'font-weight="bold"[^>]*>([^<]+)<', svg)
    assert stages == ["data", "features", "training", "registry", "service", "monitoring"]


# ------------------------------------------------------------------ the question reference


def test_question_reference_follows_copier_yml(site):
    _, questions = hooks.load_questions()
    text = html.unescape(re.sub(r"<[^>]+>", "", page_html(site, "questions.md").read_text()))
    text = " ".join(text.split())
    page = page_html(site, "questions.md").read_text()
    for name, question in questions.items():
        assert f'id="{name}"' in page, f"no section for {name}"
        assert " ".join(str(question.get("help", "")).split()) in text, name
        for message in hooks.validator_messages(question.get("validator", "")):
            assert message in text, f"{name}: validator message missing: {message}"
    assert "The e-mail address '<answer>' is not valid: expected name@domain.tld." in text


def test_validator_messages_are_the_branches_of_the_validator():
    validator = (
        "{% if not x %}X must not be empty.{% elif x == 'a' %}X may not be\n'{{ x }}'.{% endif %}"
    )
    assert hooks.validator_messages(validator) == [
        "X must not be empty.",
        "X may not be '<answer>'.",
    ]


def test_the_hook_refuses_a_reference_page_without_its_marker():
    page = type("Page", (), {"file": type("File", (), {"src_uri": hooks.QUESTIONS_PAGE})()})()
    with pytest.raises(hooks.PluginError):
        hooks.on_page_markdown("# Questions\n", page, None, None)


# ------------------------------------------------------------ every documented command runs

# Where each quickstart command is run. An entry is `FILE` (the file runs it) or
# `FILE::FUNCTION` (that function runs it); the command must appear in its source.
QUICKSTART_RUNS = {
    "make demo": ["tests/test_docs.py::test_make_demo_serves_a_prediction"],
    # the template's suite is CI's command; the rendered project's is tier 3's
    "make test": [".ci/run", "tests/test_run.py::test_rendered_project_passes_its_own_tests"],
    "uvx copier copy path/or/url/of/copier-mlops my-project": [
        "tests/test_docs.py::test_quickstart_copy_renders_a_project"
    ],
    # harness.demo runs the rendering's `make run`; test_make_demo_serves_a_prediction runs it
    "make run": ["tests/harness.py::demo"],
}


def _source_of(place: str) -> str:
    path, _, function = place.partition("::")
    text = (ROOT / path).read_text()
    if not function:
        return text
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return ast.get_source_segment(text, node)
    raise AssertionError(f"{place}: no such function")


def _mentions(source: str, command: str) -> bool:
    words = command.split()
    as_list = "[" + ", ".join(f'"{word}"' for word in words)
    return command in source or as_list in source


def test_every_quickstart_command_is_run_by_a_test():
    commands = documented_commands("quickstart.md")
    assert set(commands) == set(QUICKSTART_RUNS), "map each quickstart command to its test"
    for command, places in QUICKSTART_RUNS.items():
        for place in places:
            assert _mentions(_source_of(place), command), f"{place} does not run `{command}`"


def test_ci_runs_make_test():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert lines[-1] == "make test"


@pytest.mark.slow
def test_make_demo_serves_a_prediction():
    # The repository's uv first on PATH, as for .ci/run; telemetry off.
    env = {**os.environ, "PATH": f"{Path(tool('uv')).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    result = subprocess.run(
        ["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "==> make run" in output and '"predictions"' in output
    shown = next(
        text for commands, text in course_steps("quickstart.md") if commands == ["make demo"]
    )
    # The quickstart shows the last lines; only the id, the probability and the folder vary.
    unseen = _shape(shown) - _shape(output)
    assert not unseen, f"make demo did not print {sorted(unseen)}"


@pytest.mark.slow
def test_quickstart_copy_renders_a_project(tmp_path):
    documented = "uvx copier copy path/or/url/of/copier-mlops my-project"
    assert documented in documented_commands("quickstart.md")
    # Non-interactive here: the documented command, with the defaults accepted and the
    # working tree of this repository as the template.
    command = documented.replace("path/or/url/of/copier-mlops", str(ROOT)).split()
    command[0] = tool("uvx")
    result = subprocess.run(
        [*command, "--defaults", "--vcs-ref", "HEAD"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    project = tmp_path / "my-project"
    assert read_answers(project)["package_name"] == "customer_churn"
    assert "make run" in (project / "README.md").read_text()


# The course guide is run as a student would run it: every bash block in order, in one
# scratch folder beside a link to this repository, each `text` block that follows a bash
# block checked against what the commands printed.
COURSE_PORT = 8000
PRESET = re.compile(r"presets/(lesson-[\w-]+\.yml)")
BLOCK = re.compile(r"^```(bash|text)\n(.*?)^```", re.MULTILINE | re.DOTALL)
VOLATILE = [
    (re.compile(r"copier-mlops-demo-\w+"), "<folder>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"-?\d+(\.\d+)?(e[+-]?\d+)?"), "<n>"),
]


def course_steps(page: str = "course.md") -> list[tuple[list[str], str | None]]:
    """(commands of a bash block, the text block right after it or None), in page order."""
    blocks = BLOCK.findall((DOCS / page).read_text())
    steps = []
    for index, (kind, body) in enumerate(blocks):
        if kind != "bash":
            continue
        after = blocks[index + 1] if index + 1 < len(blocks) else None
        commands = [re.sub(r"\s+#.*$", "", line).strip() for line in body.splitlines()]
        steps.append(
            ([c for c in commands if c], after[1] if after and after[0] == "text" else None)
        )
    return steps


def _shape(text: str) -> set[str]:
    """Lines with their ids and numbers masked: what stays the same from run to run."""
    lines = set()
    for line in text.splitlines():
        for pattern, mask in VOLATILE:
            line = pattern.sub(mask, line)
        if line.strip():
            lines.add(line.strip())
    return lines


def test_course_guide_lessons_follow_the_presets():
    text = (DOCS / "course.md").read_text()
    lessons = re.findall(r"^## Lesson (\d): ", text, re.MULTILINE)
    presets = sorted(set(PRESET.findall(text)))
    assert lessons == ["1", "2", "3", "4", "5"]
    assert [p.split("-")[1] for p in presets] == lessons, presets
    assert all(commands for commands, _ in course_steps())


@pytest.mark.slow
def test_course_guide_commands_run_and_print_what_it_shows(tmp_path):
    missing = [p for p in PRESET.findall((DOCS / "course.md").read_text())
               if not (ROOT / "presets" / p).exists()]  # fmt: skip
    if missing:
        pytest.skip(f"COURSE PRESETS NOT IN THE REPOSITORY: {sorted(set(missing))}")
    with socket.socket() as probe:  # the guide's service, simulator and curl all use :8000
        if probe.connect_ex(("127.0.0.1", COURSE_PORT)) == 0:
            pytest.skip(f"PORT {COURSE_PORT} IS TAKEN: the course guide's commands need it")
    clone = working_tree_repository(tmp_path / "clone", ("copier.yml", "template", "presets"))
    run_course(tmp_path, clone)


def run_course(scratch: Path, template: Path) -> None:
    """Run the course guide's commands against `template` (a clean clone, as a teacher has)."""
    (scratch / "copier-mlops").symlink_to(template)
    env = project_env("3.12")
    cwd, server = scratch, None
    try:
        for commands, expected in course_steps():
            output = ""
            for command in commands:
                if command.startswith("cd "):
                    cwd = (cwd / command[3:]).resolve()
                    continue
                if command.startswith("uvx copier update") and server:
                    server = _stop(server)
                if command.endswith(" serve"):
                    server = subprocess.Popen(
                        ["bash", "-c", command], cwd=cwd, env=env, start_new_session=True,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    wait_until_answers(f"http://127.0.0.1:{COURSE_PORT}/ready", server, 300)
                    continue
                result = subprocess.run(
                    ["bash", "-c", command], cwd=cwd, env=env,
                    capture_output=True, text=True, timeout=1500,
                )  # fmt: skip
                output += f"{result.stdout}\n{result.stderr}\n"  # curl ends without a newline
                assert result.returncode == 0, f"`{command}` in {cwd}:\n{output[-4000:]}"
            if expected is not None:
                unseen = _shape(expected) - _shape(output)
                assert not unseen, f"{commands} did not print {unseen}:\n{output[-4000:]}"
    finally:
        if server:
            _stop(server)


def _stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGINT)
    server.wait(timeout=60)


# ------------------------------------------------------------------- the page in a browser


def chromium() -> str:
    """Debian's Chromium, installed with apt-get when it is missing."""
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if Path(found).exists():
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("CHROMIUM IS MISSING AND THERE IS NO apt-get TO INSTALL IT")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = ""
    # Install from the package lists as they are; refresh them and retry if that fails.
    install = ["apt-get", "install", "-y", "chromium"]
    for commands in ([install], [["apt-get", "update"], install]):
        for command in commands:
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
            log += result.stdout[-2000:] + result.stderr[-2000:]
        if result.returncode == 0 and Path("/usr/bin/chromium").exists():
            return "/usr/bin/chromium"
    pytest.skip(f"CHROMIUM COULD NOT BE INSTALLED WITH apt-get: {log[-1500:]}")


def test_home_page_renders_in_chromium(site, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    outside = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: r.url.startswith("file:") or outside.append(r.url))
        page.goto("about:blank")
        blank = page.screenshot(type="png")
        page.goto((site / "index.html").as_uri())
        title = page.locator("article h1").first
        assert title.is_visible() and title.inner_text().strip(" ¶\n") == "copier-mlops"
        assert page.locator("nav").first.is_visible()
        shot = page.screenshot(path=str(tmp_path / "home.png"), full_page=True, type="png")
        page.goto((site / "project" / "index.html").as_uri())
        diagram = page.locator("article img").first
        width = diagram.evaluate("img => img.complete ? img.naturalWidth : 0")
        browser.close()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10 * len(blank), (len(shot), len(blank))
    assert width > 500, "the architecture diagram did not load"
    assert not outside, f"the site reached outside itself: {outside}"


# ------------------------------------------------------ the rendered project's own docs


@pytest.mark.slow
def test_rendered_project_docs_build_strict(workspace, answers_of):
    project, answers = workspace("defaults"), answers_of("defaults")
    env = project_env(answers["python_version"])
    result = subprocess.run(
        ["make", "docs"], cwd=project, env=env, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    api = (project / "site" / "api" / "index.html").read_text()
    package = answers["package_name"]
    for documented in (f"{package}.contract", f"{package}.train", "build_estimator"):
        assert documented in api, documented
    card = (project / "site" / "model-card" / "index.html").read_text()
    assert "INTENDED_USE" in card and "Receipt" in card
