"""Tier 6: example_project/ is exactly what the default answers render today."""

import filecmp
import re
from pathlib import Path

from harness import ANSWERS_FILE, EXAMPLE, PROVENANCE_KEYS, read_answers, render

ROOT = Path(__file__).resolve().parent.parent
# A file the repository's docs name in a code span: in the repository, or (a path of a
# rendered project) in example_project/, the default rendering.
NAMED_PATH = re.compile(
    r"`((?:src|tests|deploy|docs|template|benchmarks|example_project|presets)/[^`\s<*{$]+)`"
)

PROVENANCE = re.compile(rf"(?m)^({'|'.join(PROVENANCE_KEYS)}): .*\n")


def test_example_project_matches_a_fresh_rendering(tmp_path):
    assert EXAMPLE.is_dir(), "example_project/ is missing: run `make example`"
    fresh = render(tmp_path / "fresh", {"copyright_year": read_answers(EXAMPLE)["copyright_year"]})
    committed = {p.relative_to(EXAMPLE) for p in EXAMPLE.rglob("*") if p.is_file()}
    rendered = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    assert committed == rendered, "files differ: run `make example`"
    changed = [
        str(path)
        for path in sorted(rendered)
        if str(path) != ANSWERS_FILE
        and not filecmp.cmp(EXAMPLE / path, fresh / path, shallow=False)
    ]
    assert not changed, f"stale files in example_project/ (run `make example`): {changed}"
    strip = lambda text: PROVENANCE.sub("", text)  # noqa: E731
    assert strip((EXAMPLE / ANSWERS_FILE).read_text()) == strip((fresh / ANSWERS_FILE).read_text())


def test_example_answers_are_the_defaults():
    answers = read_answers(EXAMPLE)
    assert answers["problem_type"] == "classification"
    assert answers["package_name"] == "customer_churn"
    assert answers["_src_path"] == ".."


def test_the_docs_name_only_files_there_are():
    missing = [
        f"{doc.relative_to(ROOT)}: {named}"
        for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
        for named in NAMED_PATH.findall(doc.read_text())
        if not any((where / named.split("::")[0]).exists() for where in (ROOT, EXAMPLE))
    ]
    assert not missing, missing
