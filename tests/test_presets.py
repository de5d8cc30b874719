"""Course presets: answer files for a sequence of lessons in presets/, lesson-N-<topic>.yml.

A class renders lesson 1 and then moves the same repository from lesson to lesson with
`copier update --data-file presets/lesson-N-....yml`. Here lesson 1 is rendered, a student's
edits are committed, and each next lesson's answers are applied by copier's Python API (the
`--data-file` equivalent). Every preset renders the files its answers imply, cleanly (fast);
at every lesson the student's project is that lesson's rendering plus the student's edits,
without a conflict (slow: a chain of updates takes longer than the fast tier allows).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from copier import run_copy

from harness import (
    ROOT,
    commit_all,
    merge_leftovers,
    project_files,
    read_answers,
    render,
    tool,
    update,
)
from test_render import LEFTOVER_JINJA, expected_files
from user_edits import apply_user_edits, assert_user_edits

# A student also keeps notes in a README section after the template's last one.
STUDENT_SECTION = "\n## My lesson notes\n\nLesson 1: the contract drives validation and features.\n"
PRESET_NAME = re.compile(r"^lesson-(\d+)-[a-z0-9]+(-[a-z0-9]+)*\.yml$")
PRESETS = sorted(ROOT.glob("presets/*.yml"))
LESSONS = sorted(
    int(PRESET_NAME.match(p.name).group(1)) for p in PRESETS if PRESET_NAME.match(p.name)
)


def preset(lesson: int) -> dict:
    (path,) = [p for p in PRESETS if p.name.startswith(f"lesson-{lesson}-")]
    return yaml.safe_load(path.read_text())


def preset_errors(answers: dict, config: dict) -> list[str]:
    """What is wrong with a preset's answers against the questions of copier.yml."""
    errors = []
    for key, value in answers.items():
        question = config.get(key)
        if key.startswith("_") or not isinstance(question, dict) or question.get("when") is False:
            errors.append(f"'{key}' is not a question of copier.yml")
            continue
        if question.get("type") == "bool" and not isinstance(value, bool):
            errors.append(f"'{key}' must be true or false, not {value!r}")
        choices = question.get("choices")
        if choices is not None:
            allowed = list(choices.values()) if isinstance(choices, dict) else list(choices)
            if value not in allowed:
                errors.append(f"'{key}' must be one of {allowed}, not {value!r}")
    return errors


def test_presets_are_lessons_one_to_n():
    assert [p.name for p in PRESETS if not PRESET_NAME.match(p.name)] == [], (
        "presets/ holds only lesson-N-<topic>.yml files"
    )
    assert list(range(1, len(PRESETS) + 1)) == LESSONS, "lessons are numbered 1, 2, 3, ..."
    assert len(LESSONS) >= 5


@pytest.mark.parametrize("lesson", LESSONS)
def test_preset_answers_questions_of_the_template(lesson):
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert preset_errors(preset(lesson), config) == []


def test_preset_errors_name_the_wrong_answer():
    config = {"docker": {"type": "bool"}, "ci_provider": {"type": "str", "choices": ["none"]}}
    config["slug"] = {"type": "str", "when": False}
    wrong = {"docker": "yes", "ci_provider": "jenkins", "slug": "x", "dockr": True}
    assert preset_errors(wrong, config) == [
        "'docker' must be true or false, not 'yes'",
        "'ci_provider' must be one of ['none'], not 'jenkins'",
        "'slug' is not a question of copier.yml",
        "'dockr' is not a question of copier.yml",
    ]


def test_lesson_2_renders_what_lesson_1_does():
    """Experiment tracking is in the project from lesson 1 on: lesson 2 only uses it."""
    assert preset(2) == preset(1)


def apply_student_edits(project: Path) -> None:
    """The user edits of the update tier, and a section of notes after the README's last one."""
    apply_user_edits(project)
    with (project / "README.md").open("a") as readme:
        readme.write(STUDENT_SECTION)


@pytest.fixture(scope="session")
def lesson_rendering(tmp_path_factory, template_source):
    """`lesson_rendering(N)`: a fresh rendering of lesson N's preset (made once per answers)."""
    cache: dict[str, Path] = {}

    def get(lesson: int) -> Path:
        key = yaml.safe_dump(preset(lesson), sort_keys=True)
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"lesson-{lesson}") / "project"
            cache[key] = render(folder, preset(lesson), source=template_source)
        return cache[key]

    return get


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_renders_the_files_its_answers_imply(lesson, lesson_rendering):
    project = lesson_rendering(lesson)
    answers = read_answers(project)
    assert {key: answers[key] for key in preset(lesson)} == preset(lesson)
    actual = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    assert actual == expected_files(answers)


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_rendering_is_clean(lesson, lesson_rendering):
    project = lesson_rendering(lesson)
    for path in project.rglob("*"):
        if path.is_file() and path.suffix != ".csv":
            assert not LEFTOVER_JINJA.search(path.read_text()), path.relative_to(project)
    for args in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run([tool("ruff"), *args], cwd=project, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def course(template_repo, tmp_path_factory) -> dict[int, Path]:
    """`course[N]`: the student's project as it is at lesson N (a copy, without .git).

    Lesson 1 is rendered from the newest release and the student's edits are committed; every
    next lesson is `copier update` with that lesson's preset, committed. A lesson with the same
    answers as the one before renders the same files: its project is the same.
    """
    project = tmp_path_factory.mktemp("course") / "project"
    run_copy(
        str(template_repo), str(project), data=preset(1), defaults=True, quiet=True, unsafe=False
    )
    commit_all(project, "Lesson 1")
    apply_student_edits(project)
    commit_all(project, "Our model, feature, test and notes")
    snapshots = {}
    for lesson in LESSONS:
        if lesson > 1 and preset(lesson) != preset(lesson - 1):
            update(project, preset(lesson))
        snapshot = tmp_path_factory.mktemp(f"course-{lesson}") / "project"
        snapshots[lesson] = Path(
            shutil.copytree(project, snapshot, ignore=shutil.ignore_patterns(".git"))
        )
    return snapshots


# A chain of `copier update`s costs ~4-8 s a lesson here: slow, although nothing is installed.
@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_moving_to_the_lesson_merges_cleanly_and_keeps_the_edits(
    lesson, course, lesson_rendering, tmp_path
):
    """The student's project at lesson N is lesson N's rendering plus the student's edits."""
    project = course[lesson]
    assert merge_leftovers(project) == []
    assert_user_edits(project)
    assert (project / "README.md").read_text().endswith(STUDENT_SECTION)
    expected = Path(shutil.copytree(lesson_rendering(lesson), tmp_path / "expected"))
    apply_student_edits(expected)
    want, got = project_files(expected), project_files(project)
    assert sorted(got) == sorted(want)
    assert [name for name in sorted(want) if got[name] != want[name]] == []


# Lesson 1's own `make test` runs in the course guide's test (tests/test_docs_commands.py), which
# follows the guide's commands from `copier copy` of lesson 1 onwards.
