"""The documentation site: every page is in the nav and built, its links and anchors resolve,
it loads nothing from outside and its home page renders in a real browser; the rendered
project's own documentation builds too."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from docs_site import DOCS, page_html
from harness import ROOT, chromium, project_env

# The flags that make Debian's Chromium render local pages here without reaching any network.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def nav_pages(nav) -> list[str]:
    """The Markdown files of a mkdocs `nav`, in order."""
    pages = []
    for entry in nav:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


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


# ------------------------------------------------------------------- the page in a browser


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
    for documented in (f"{package}.contract", f"{package}.jobs.train", "build_estimator"):
        assert documented in api, documented
    card = (project / "site" / "model-card" / "index.html").read_text()
    assert "INTENDED_USE" in card and "Receipt" in card
