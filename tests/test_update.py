"""Tier 5: `copier update` takes a project to a newer template version and keeps the user's work.

A template repository made from this one (harness.template_repository) holds two releases:
OLD_VERSION, an older commit of the template, and NEW_VERSION, this working tree. The default
answers are rendered at OLD_VERSION and committed, the scripted edits of a user are committed
on top, and copier's Python API updates the project to the newest release. The result must be
exactly what NEW_VERSION renders with the same edits applied: nothing rejected, no conflict,
nothing of the user's lost, no template file left behind at the old version.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from copier import run_copy

from harness import (
    NEW_VERSION,
    OLD_VERSION,
    check_update,
    commit_all,
    git,
    merge_leftovers,
    project_files,
    read_answers,
    update,
)
from user_edits import (
    apply_user_edits,
    assert_own_tests_pass,
    assert_user_edits,
    follow_release_notes,
    listed_modules,
    moved_modules,
)


@dataclass
class UpdatedProject:
    project: Path
    rendered_at: str  # the `_commit` the first rendering recorded
    before: dict  # copier check-update, before and after the update
    after: dict


@pytest.fixture(scope="session")
def updated(template_repo, tmp_path_factory) -> UpdatedProject:
    project = tmp_path_factory.mktemp("update") / "project"
    run_copy(
        str(template_repo),
        str(project),
        defaults=True,
        vcs_ref=OLD_VERSION,
        quiet=True,
        unsafe=False,
    )
    commit_all(project, f"Render copier-mlops {OLD_VERSION}")
    rendered_at = read_answers(project)["_commit"]
    apply_user_edits(project)
    commit_all(project, "Our model, feature, test and notes")
    before = check_update(project)
    update(project)
    return UpdatedProject(project, rendered_at, before, check_update(project))


def test_check_update_reports_the_newer_release(updated):
    assert updated.rendered_at == OLD_VERSION
    assert updated.before == {
        "update_available": True,
        "current_version": OLD_VERSION,
        "latest_version": NEW_VERSION,
    }
    assert updated.after["update_available"] is False
    assert read_answers(updated.project)["_commit"] == NEW_VERSION


def test_update_leaves_no_conflict_or_rejected_hunk(updated):
    assert merge_leftovers(updated.project) == []


def test_every_user_edit_survives(updated):
    assert_user_edits(updated.project)


def test_update_equals_the_new_release_plus_the_user_edits(updated, template_repo, tmp_path):
    """Every template-owned file is at the new version; the user's files carry their edits
    (their module's imports once changed as the release notes say)."""
    expected = tmp_path / "expected"
    run_copy(str(template_repo), str(expected), defaults=True, quiet=True, unsafe=False)
    apply_user_edits(expected)
    project = Path(shutil.copytree(updated.project, tmp_path / "updated"))
    assert follow_release_notes(project) == ["ingest"]
    want, got = project_files(expected), project_files(project)
    assert sorted(got) == sorted(want)
    assert [name for name in sorted(want) if got[name] != want[name]] == []


def test_update_is_committed_and_clean(updated):
    assert git(updated.project, "status", "--porcelain") == ""


def test_no_question_disappears_without_a_migration(template_repo):
    """A question the older release asked is still asked, or a newer question's default reads
    the old answer (a rename), or `_migrations` names it; docs/releasing.md says which."""
    old = yaml.safe_load(git(template_repo, "show", f"{OLD_VERSION}:copier.yml"))
    new = yaml.safe_load((template_repo / "copier.yml").read_text())
    questions = lambda config: {k for k in config if not k.startswith("_")}  # noqa: E731
    handled = yaml.safe_dump(
        {"defaults": [v.get("default") for v in new.values() if isinstance(v, dict)]}
        | {"migrations": new.get("_migrations", [])}
    )
    gone = [
        name
        for name in sorted(questions(old) - questions(new))
        if not re.search(rf"\b{re.escape(name)}\b", handled)
    ]
    assert gone == [], f"questions of {OLD_VERSION} dropped without a rename or a migration"


def test_release_notes_name_where_every_moved_module_went(template_repo):
    """Each module of the older release's package that is gone has a row in CHANGELOG.md's
    table of moved imports, and each row names a module of the new release."""
    package = "{{ package_name }}"
    listed = git(template_repo, "ls-tree", "-r", "--name-only", OLD_VERSION, "template/src")
    old = {_module(path, package) for path in listed.splitlines() if _module(path, package)}
    new = {_module(str(p.relative_to(template_repo)), package) for p in template_repo.rglob("*")}
    moved = moved_modules()
    assert sorted(old - new - listed_modules()) == [], "modules gone without a row in CHANGELOG.md"
    assert sorted(set(moved.values()) - new) == [], "rows naming no module of the new release"


def _module(path: str, package: str) -> str | None:
    """`template/src/{{ package_name }}/data/ingest.py.jinja` -> `data.ingest`; None for others."""
    prefix = f"template/src/{package}/"
    if not path.startswith(prefix) or ".py" not in path:
        return None
    parts = [re.sub(r"\{%.*?%\}", "", part) for part in path[len(prefix) :].split("/")]
    parts[-1] = parts[-1].removesuffix(".jinja").removesuffix(".py")
    return ".".join(part for part in parts if part != "__init__") or None


@pytest.mark.slow
def test_updated_project_passes_its_own_tests(updated, tmp_path):
    """After the update, the user changes their module's imports as the release notes say,
    then the tests their edits reach pass, their own tests included."""
    project = Path(shutil.copytree(updated.project, tmp_path / "project"))
    follow_release_notes(project)
    assert_own_tests_pass(project, tmp_path / "run")
