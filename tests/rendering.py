"""Render this working tree with copier, and build template repositories of releases for
`copier update`: the template side of the tests, with the git they need."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

from programs import tool

ROOT = Path(__file__).resolve().parent.parent
ANSWERS_FILE = ".copier-answers.yml"
# Lines of the answers file that depend on where and from which commit a project was rendered.
PROVENANCE_KEYS = ("_commit", "_src_path")

# Copier commits uncommitted template changes in its clone: git needs an identity for that.
for _key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
    os.environ.setdefault(_key, "copier-mlops tests")
for _key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
    os.environ.setdefault(_key, "tests@copier-mlops.invalid")


def render(
    destination: Path, answers: dict | None = None, source: Path | None = None, **options
) -> Path:
    """Render the working tree of this repository (uncommitted changes included) with copier.

    `source` is a `template_snapshot` of it to render from instead: copier then reads the
    files in place rather than cloning this repository first (0.4 s less a rendering), and
    the answers file records no `_commit`.
    """
    from copier import run_copy

    run_copy(
        str(source or ROOT),
        str(destination),
        data=answers or {},
        defaults=True,
        # HEAD of a local repository includes its uncommitted changes
        vcs_ref=None if source else "HEAD",
        unsafe=False,
        quiet=True,
        **options,
    )
    return destination


def copy_template_files(destination: Path, paths: tuple[str, ...] | None = None) -> None:
    """Copy what copier reads (copier.yml and template/), or the top-level `paths`, from the
    working tree, uncommitted changes included and ignored files (caches) left out, into
    `destination`."""
    paths = paths or TEMPLATE_PATHS
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--")
    for name in filter(None, listed.split("\0")):
        if name.split("/")[0] in paths and (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)


def template_snapshot(destination: Path) -> Path:
    """A plain folder holding the template as it is now, for `render(..., source=...)`."""
    destination.mkdir(parents=True)
    copy_template_files(destination)
    return destination


def working_tree_repository(destination: Path, paths: tuple[str, ...]) -> Path:
    """A git repository of one commit holding `paths` as they are in the working tree.

    Copier renders a dirty repository by committing its changes in a clone of its own, and
    records that commit, which no later `copier update` can find; a user's clone is clean.
    Rendering from this repository is what a user's clone of the working tree would give.
    """
    destination.mkdir(parents=True)
    copy_template_files(destination, paths)
    commit_all(destination, "copier-mlops (working tree)")
    return destination


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its output; a failure raises with git's message."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout


def commit_all(project: Path, message: str) -> None:
    """Stage and commit everything in `project`, making it a git repository if it is not one."""
    if not (project / ".git").exists():
        git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "--no-verify", "-m", message)


# Release tags of the template repository made by `template_repository`, and what it holds.
OLD_VERSION, NEW_VERSION = "0.0.1", "0.0.2"
TEMPLATE_PATHS = ("copier.yml", "template")


# Release 0.1.0, the last with the flat package layout: where a clone holds no release tags,
# the update tier still starts from it.
RELEASE_0_1_0 = "a2c37c0475405a659c338a9d198ae940199d9e5a"


def older_template_commit(repository: Path) -> str:
    """The commit to update from: the newest release before HEAD whose template differs from
    HEAD's, or, in a clone without release tags, release 0.1.0."""
    releases = []
    for tag in git(repository, "tag", "--merged", "HEAD").split():
        try:
            version = Version(tag)
        except InvalidVersion:
            continue
        if not version.is_prerelease:
            releases.append((version, tag))
    for _, tag in sorted(releases, reverse=True):
        differs = subprocess.run(
            ["git", "diff", "--quiet", tag, "HEAD", "--", *TEMPLATE_PATHS],
            cwd=repository,
            check=False,
        )
        if differs.returncode == 1:
            return git(repository, "rev-list", "-n", "1", tag).strip()
    return RELEASE_0_1_0


def template_repository(destination: Path) -> Path:
    """A template repository of two releases, for `copier update` tests; no network is used.

    Its first commit is the template (copier.yml and template/) at `older_template_commit` of
    this repository, tagged OLD_VERSION; the second is the template in this working tree,
    uncommitted changes included (as `render` sees it), tagged NEW_VERSION. Holding only what
    copier reads keeps copier's own clones of it small; no other tag can be the newest.
    """
    destination.mkdir(parents=True)
    older = older_template_commit(ROOT)
    archive = destination.parent / f"{destination.name}-older.tar"
    git(ROOT, "archive", "-o", str(archive), older, "--", *TEMPLATE_PATHS)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(destination)], check=True)
    archive.unlink()
    commit_all(destination, f"copier-mlops {older}")
    git(destination, "tag", OLD_VERSION)
    shutil.rmtree(destination / "template")
    copy_template_files(destination)
    git(destination, "add", "-A")
    git(destination, "commit", "-q", "--no-verify", "--allow-empty", "-m", "copier-mlops now")
    git(destination, "tag", NEW_VERSION)
    return destination


def update(project: Path, data: dict | None = None) -> None:
    """`copier update` to the newest release, as a user runs it, then commit the result.

    Conflicts are left inline in the files (see `merge_leftovers`), as copier does by default.
    """
    from copier import run_update

    run_update(
        str(project),
        data=data or {},
        defaults=True,
        overwrite=True,
        conflict="inline",
        quiet=True,
        unsafe=False,
    )
    commit_all(project, "Update from the template")


def project_files(project: Path) -> dict[str, bytes]:
    """Every file of `project` but git's, by relative path; the answers file without the
    lines that say where and from which commit it was rendered."""
    files = {}
    for path in project.rglob("*"):
        relative = path.relative_to(project)
        if path.is_file() and relative.parts[0] != ".git":
            files[str(relative)] = path.read_bytes()
    provenance = re.compile(rf"(?m)^({'|'.join(PROVENANCE_KEYS)}): .*\n".encode())
    files[ANSWERS_FILE] = provenance.sub(b"", files[ANSWERS_FILE])
    return files


CONFLICT_MARKER = re.compile(r"(?m)^(<{7}|>{7})( |$)")


def merge_leftovers(project: Path) -> list[str]:
    """Files of `project` that copier left a rejected hunk or an inline conflict in."""
    found = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if relative.parts[0] == ".git" or not path.is_file():
            continue
        if path.suffix == ".rej" or CONFLICT_MARKER.search(path.read_text(errors="replace")):
            found.append(str(relative))
    return found


def check_update(project: Path) -> dict:
    """What `copier check-update` reports for `project`, as its JSON output."""
    result = subprocess.run(
        [tool("copier"), "check-update", "--output-format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"copier check-update failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout)


def read_answers(project: Path) -> dict:
    return yaml.safe_load((project / ANSWERS_FILE).read_text())
