"""Tier 6: example_project/ is exactly what the default answers render today."""

import filecmp
import re

from harness import ANSWERS_FILE, EXAMPLE, PROVENANCE_KEYS, read_answers, render

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
