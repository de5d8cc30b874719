"""The template's documentation site: where its pages are, how it is built (strict), and
which built file a page becomes."""

from __future__ import annotations

import os
import re
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


COMMAND_BLOCK = re.compile(r"^ *```bash\n(.*?)^ *```", re.MULTILINE | re.DOTALL)


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
