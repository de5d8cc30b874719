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


# A page's bash blocks and the `text` block that shows what they print.
BLOCK = re.compile(r"^```(bash|text)\n(.*?)^```", re.MULTILINE | re.DOTALL)
VOLATILE = [
    (re.compile(r"copier-mlops-demo-\w+"), "<folder>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"-?\d+(\.\d+)?(e[+-]?\d+)?"), "<n>"),
    (re.compile(r"─+"), "─"),  # the rules of a table, as wide as its widest figure
    (re.compile(r"\s+"), " "),
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


def stable_lines(text: str) -> set[str]:
    """Lines with their ids and numbers masked: what stays the same from run to run."""
    lines = set()
    for line in text.splitlines():
        for pattern, mask in VOLATILE:
            line = pattern.sub(mask, line)
        if line.strip():
            lines.add(line.strip())
    return lines
