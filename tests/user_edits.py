"""The edits a user of the default (customer churn) project makes between two template updates:
a hyperparameter, a new feature in the contract (with its example data), a new test file and a
note under the README's title: what the rendered README tells users is theirs to edit."""

import csv
import io
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
README_NOTE = "\nOwned by the retention team; retrained every Monday.\n"  # under the title


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


def assert_user_edits(project: Path) -> None:
    """Every edit of `apply_user_edits` is in `project`."""
    source = project / "src" / read_answers(project)["package_name"]
    assert HYPERPARAMETER[1] in (source / "model.py").read_text()
    assert NEW_FEATURE in (source / "contract.py").read_text()
    assert NEW_COLUMN in (source / "synthetic.py").read_text()
    assert "senior" in (project / "data" / "customers.csv").read_text().splitlines()[0]
    assert "def test_senior_follows_age" in (project / USER_TEST).read_text()
    assert README_NOTE in (project / "README.md").read_text()


def assert_own_tests_pass(project: Path, workspace: Path) -> None:
    """Install a copy of `project` in `workspace` and run its `make test`: everything passes,
    the user's own test included. Skipped where the project's Python is not installed."""
    project = Path(shutil.copytree(project, workspace))
    version = read_answers(project)["python_version"]
    if python_for(version) is None:
        pytest.skip(f"NO PYTHON {version} ON THIS MACHINE: cannot install {project}")
    # The load and kill tests (marker `load`) are left out: the same code runs them in the
    # fresh renderings of tier 3, and they take minutes.
    env = project_env(version) | {"PYTEST_ADDOPTS": "-m 'not load'"}
    output = run_checked(["make", "test"], project, env)
    assert " passed" in output and " failed" not in output
    assert f"{USER_TEST} ." in output, "the user's own test ran and passed"
