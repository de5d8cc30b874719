"""copier.yml: every question is well formed, and wrong answers are refused with a clear message."""

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from harness import ROOT, render, tool

QUESTIONS = {
    name: spec
    for name, spec in yaml.safe_load((ROOT / "copier.yml").read_text()).items()
    if not name.startswith("_")
}
ASKED = {name: spec for name, spec in QUESTIONS.items() if spec.get("when") is not False}


@pytest.mark.parametrize("name", sorted(ASKED))
def test_every_question_has_type_help_and_default(name):
    spec = ASKED[name]
    assert spec.get("type") in {"str", "bool", "int", "float", "yaml", "json"}
    assert spec.get("help", "").strip()
    assert "default" in spec


def test_rendering_needs_no_trust():
    settings = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert not {"_tasks", "_migrations", "_jinja_extensions"} & set(settings)


def test_reserved_names_cover_the_standard_library_of_this_python():
    reserved = set(QUESTIONS["reserved_stdlib_modules"]["default"])
    public = {name for name in sys.stdlib_module_names if not name.startswith("_")}
    assert public <= reserved, sorted(public - reserved)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "9lives"}, "must be a valid Python identifier"),
        ({"package_name": "Churn"}, "must be a valid Python identifier"),
        ({"package_name": "churn-model"}, "must be a valid Python identifier"),
        ({"package_name": "json"}, "'json' would shadow the standard-library module"),
        ({"package_name": "test"}, "'test' would shadow the standard-library module"),
        ({"project_name": "Test"}, "'test' would shadow the standard-library module"),
        ({"package_name": "sklearn"}, "'sklearn' would shadow a dependency"),
        ({"project_name": "MLflow"}, "'mlflow' would shadow a dependency"),
        ({"project_name": "   "}, "The project name must not be empty"),
        ({"project_name": "42 Models"}, "must start with a letter"),
        ({"description": ""}, "The description must not be empty"),
        ({"author_name": ""}, "The author name must not be empty"),
        ({"author_email": "nobody"}, "'nobody' is not valid: expected name@domain.tld"),
        ({"author_email": "a b@example.com"}, "is not valid"),
        ({"copyright_year": "last year"}, "must look like 2026 or 2024-2026"),
        ({"python_version": "3.9"}, "'3.9' is not in"),
        ({"problem_type": "clustering"}, "'clustering' is not in"),
        ({"model_family": "svm"}, "'svm' is not in"),
        ({"license": "GPL"}, "'GPL' is not in"),
        ({"ci_provider": "jenkins"}, "'jenkins' is not in"),
        ({"serving": False, "docker": True}, "packages the prediction service"),
        ({"project_name": "Class"}, "'class' is a Python keyword"),
        ({"project_name": "A" * 61}, "at most 60 characters"),
        ({"package_name": "a" * 31}, "at most 30 characters"),
        ({"description": "two\nlines"}, "one line of text"),
        ({"description": "x" * 201}, "at most 200 characters"),
        ({"author_name": "tab\there"}, "one line"),
        ({"author_email": 'quote"d@example.com'}, "is not valid"),
        ({"serving": False, "monitoring": True, "docker": False}, "watches the prediction service"),
        (
            {"serving": False, "monitoring": False, "docker": False, "dashboard": True},
            "is a page of the prediction service",
        ),
    ],
    ids=lambda value: (
        "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None
    ),
)
def test_invalid_answers_are_refused(tmp_path: Path, template_source, answers, message):
    with pytest.raises(ValueError, match=message):
        render(tmp_path / "out", answers, source=template_source)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_readme_question_table_lists_every_question():
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"(?m)^\| `([a-z_]+)` \|", readme)
    assert table == list(ASKED), "the README's question table must follow copier.yml, in order"


# Answers a user may well type: each must render files that parse and pass ruff, or be refused.
ODD_ANSWERS = {
    "quotes and backslashes": {
        "description": "Say \"hi\" to O'Brien's C:\\data \\ \"\"\"triple\"\"\" and '''single'''",
        "author_name": 'The "Quoted" Team \\ Co',
    },
    "jinja and braces": {
        "description": "{{ 7 * 7 }} {% if x %}y{% endif %} {# c #} ${HOME} {braces}",
        "author_name": "{{ author }}",
    },
    "non-ascii": {
        "project_name": "Prevision des ventes",
        "description": "Prévision des ventes — 売上予測 ✓",
        "author_name": "Équipe Données Ünïcode",
    },
    "long but allowed": {
        "project_name": "P" + "x" * 59,
        "package_name": "p" + "x" * 29,
        "description": "d" * 200,
        "author_name": "a" * 100,
    },
    "keyword-like but valid": {"project_name": "Match Case", "package_name": "match_case"},
}


@pytest.mark.parametrize("name", sorted(ODD_ANSWERS))
def test_odd_answers_render_valid_files(tmp_path: Path, template_source, name):
    answers = ODD_ANSWERS[name]
    project = render(tmp_path / "out", answers, source=template_source)
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {key: recorded[key] for key in answers} == answers, "answers are kept verbatim"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    if "description" in answers:
        assert pyproject["project"]["description"] == answers["description"]
    if "author_name" in answers:
        assert pyproject["project"]["authors"][0]["name"] == answers["author_name"]
    for path in project.rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    for path in [*project.rglob("*.yml"), *project.rglob("*.yaml")]:
        list(yaml.safe_load_all(path.read_text()))
    for path in project.rglob("*.json"):
        json.loads(path.read_text())
    package = recorded["package_name"]
    spec = importlib.util.spec_from_file_location(
        package, project / "src" / package / "__init__.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if "description" in answers:
        assert module.__doc__ == answers["description"]
    result = subprocess.run(
        [tool("ruff"), "check", "--quiet", "."], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
