"""The template's documentation site: where its pages are, how it is built (strict), and
which built file a page becomes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness import ROOT, tool

DOCS = ROOT / "docs"
MKDOCS_ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def build_site(destination: Path, cwd: Path = ROOT) -> Path:
    """`mkdocs build --strict` of the site in `cwd` into `destination`; a warning fails."""
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


def page_html(site: Path, page: str) -> Path:
    """The built file of a docs page: `how-to/update.md` -> `how-to/update/index.html`."""
    if page == "index.md":
        return site / "index.html"
    return site / page.removesuffix(".md") / "index.html"
