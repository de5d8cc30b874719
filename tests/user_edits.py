"""The edits a user of the default (customer churn) project makes between two template updates:
a hyperparameter, the model card's prose, a new feature in the contract (with its example
data), a new test file, a note under the README's title and one at its very end, and a module
of their own in the package that imports from it (with its test): what the rendered README
tells users is theirs.

A release that moves modules says in CHANGELOG.md how to change an import (a table of
`<package>.old` -> `<package>.new` rows); `follow_release_notes` makes those changes in the
user's module, as a user reading the notes would."""

import csv
import io
import re
import shutil
from pathlib import Path

import pytest

from harness import project_env, python_for, read_answers, run_checked

HYPERPARAMETER = ('"learning_rate": 0.05,', '"learning_rate": 0.08,')
NEW_FEATURE = 'Categorical("senior", "Account holder aged 65 or more", ("no", "yes")),'
NEW_COLUMN = '"senior": np.where(age >= 65, "yes", "no"),'
USER_TEST = "tests/test_senior.py"
USER_TEST_TEXT = '''"""The feature this team added to the contract."""

from {package}.contract import CONTRACT
from {package}.synthetic import generate


def test_senior_follows_age():
    assert "senior" in CONTRACT.categorical
    frame = generate(500, seed=7)
    assert ((frame["age"] >= 65) == (frame["senior"] == "yes")).all()
'''
CARD_PROSE = (
    "person's decision. Not for decisions about individuals without human review.",
    "retention call. Never used to refuse a customer a cancellation.",
)
README_NOTE = "\nOwned by the retention team; retrained every Monday.\n"  # under the title
README_END_NOTE = "\n## Our runbook\n\nPage the retention on-call when the drift alert fires.\n"
USER_MODULE = "retention.py"  # in the package, beside the template's modules
USER_MODULE_TEXT = '''"""The retention team's weekly list: long-standing monthly customers."""

from pathlib import Path

from {package}.contract import CONTRACT
from {package}.ingest import load_table


def long_standing_monthly(path: Path, months: int = 24) -> list[str]:
    """Identifiers of customers past `months` of tenure who still pay month to month."""
    frame = load_table(path)
    chosen = (frame["tenure_months"] > months) & (frame["contract_type"] == "month-to-month")
    return frame.loc[chosen, CONTRACT.identifier].astype(str).tolist()
'''
USER_MODULE_TEST = "tests/test_retention.py"
USER_MODULE_TEST_TEXT = '''"""The retention team's own module."""

from pathlib import Path

from {package}.retention import long_standing_monthly


def test_the_weekly_list_holds_long_standing_monthly_customers():
    chosen = long_standing_monthly(Path("data/customers.csv"))
    assert 0 < len(chosen) < 2000
'''
CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"
LISTED_MODULE = re.compile(r"^\| `<package>\.([\w.]+)` \|", re.MULTILINE)
MOVED_IMPORT = re.compile(r"^\| `<package>\.([\w.]+)` \| `<package>\.([\w.]+)` \|", re.MULTILINE)


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: expected one {old!r} to edit"
    path.write_text(text.replace(old, new))


def _add_senior_column(data: Path) -> None:
    """The bundled data with the new column before the target, as the edited generator makes it."""
    rows = list(csv.reader(io.StringIO(data.read_text())))
    header = rows[0]
    age, position = header.index("age"), header.index("churned")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header[:position], "senior", *header[position:]])
    for row in rows[1:]:
        senior = "yes" if int(row[age]) >= 65 else "no"
        writer.writerow([*row[:position], senior, *row[position:]])
    data.write_text(out.getvalue())


def apply_user_edits(project: Path) -> None:
    """Make the edits in `project` (a fresh rendering of the default answers)."""
    answers = read_answers(project)
    package = answers["package_name"]
    source = project / "src" / package
    _replace_once(source / "model.py", *HYPERPARAMETER)
    _replace_once(source / "card.py", *CARD_PROSE)
    _replace_once(
        source / "contract.py", "    ),\n    target=", f"        {NEW_FEATURE}\n    ),\n    target="
    )
    _replace_once(
        source / "synthetic.py",
        "            CONTRACT.target.name: churned,",
        f"            {NEW_COLUMN}\n            CONTRACT.target.name: churned,",
    )
    _add_senior_column(project / "data" / "customers.csv")
    (project / USER_TEST).write_text(USER_TEST_TEXT.format(package=package))
    title = f"# {answers['project_name']}\n"
    _replace_once(project / "README.md", title, title + README_NOTE)
    with (project / "README.md").open("a") as readme:
        readme.write(README_END_NOTE)
    (source / USER_MODULE).write_text(USER_MODULE_TEXT.format(package=package))
    (project / USER_MODULE_TEST).write_text(USER_MODULE_TEST_TEXT.format(package=package))
    if not (source / "ingest.py").exists():  # written against the layout it was written for
        follow_release_notes(project)


def moved_modules() -> dict[str, str]:
    """The import changes the release notes list: old module -> new module, without the package."""
    return dict(MOVED_IMPORT.findall(CHANGELOG.read_text()))


def listed_modules() -> set[str]:
    """Every module the release notes' tables speak of, moved into the package or out of it."""
    return set(LISTED_MODULE.findall(CHANGELOG.read_text()))


def follow_release_notes(project: Path) -> list[str]:
    """Change the imports of the user's own module as CHANGELOG.md says; the modules changed."""
    package = read_answers(project)["package_name"]
    path = project / "src" / package / USER_MODULE
    text, changed = path.read_text(), []
    for old, new in moved_modules().items():
        pattern = re.compile(rf"\b{package}\.{re.escape(old)}\b")
        if pattern.search(text):
            text, changed = pattern.sub(f"{package}.{new}", text), [*changed, old]
    path.write_text(text)
    return changed


def assert_user_edits(project: Path) -> None:
    """Every edit of `apply_user_edits` is in `project`."""
    source = project / "src" / read_answers(project)["package_name"]
    assert HYPERPARAMETER[1] in (source / "model.py").read_text()
    assert CARD_PROSE[1] in (source / "card.py").read_text()
    assert NEW_FEATURE in (source / "contract.py").read_text()
    assert NEW_COLUMN in (source / "synthetic.py").read_text()
    assert "senior" in (project / "data" / "customers.csv").read_text().splitlines()[0]
    assert "def test_senior_follows_age" in (project / USER_TEST).read_text()
    readme = (project / "README.md").read_text()
    assert README_NOTE in readme and README_END_NOTE in readme
    assert "def long_standing_monthly" in (source / USER_MODULE).read_text()
    assert "def test_the_weekly_list" in (project / USER_MODULE_TEST).read_text()


# What the edits reach (the contract, its features and example data, the model's settings,
# training, the layout the release notes describe, a run from the data to a served answer)
# and the user's own tests. Everything else in the updated project is byte for byte what the
# new release renders (test_update_equals_the_new_release_plus_the_user_edits), and the new
# release's whole suite runs on a fresh rendering (test_fresh_machine.py) and on one with a
# contract of its own (test_own_data.py).
TOUCHED_BY_THE_EDITS = (
    "tests/test_contract.py", "tests/test_features.py", "tests/test_sampling.py",
    "tests/test_layout.py", "tests/data", "tests/jobs/test_train.py",
    "tests/modeling", "tests/test_end_to_end.py",
)  # fmt: skip


def assert_own_tests_pass(project: Path, workspace: Path) -> None:
    """Install a copy of `project` in `workspace` and run its `make test` on the tests the
    edits touch and the user's own: they all pass."""
    project = Path(shutil.copytree(project, workspace))
    version = read_answers(project)["python_version"]
    if python_for(version) is None:
        pytest.skip(f"NO PYTHON {version} ON THIS MACHINE: cannot install {project}")
    chosen = [*TOUCHED_BY_THE_EDITS, USER_TEST, USER_MODULE_TEST]
    assert all((project / path).exists() for path in chosen), chosen
    env = project_env(version) | {"PYTEST_ADDOPTS": " ".join(chosen)}
    output = run_checked(["make", "test"], project, env)
    assert " passed" in output and " failed" not in output
    assert f"{USER_TEST} ." in output, "the user's own test ran and passed"
    assert f"{USER_MODULE_TEST} ." in output, "the user's module works and its test passed"
