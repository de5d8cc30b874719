"""Tier 1: every answer set renders the files its answers imply, clean and parseable."""

import ast
import json
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from answer_sets import ANSWER_SETS
from harness import tool

# The package's modules by stage folder ("" is the top level), and the tests that mirror them.
MODULES = {
    "": ["__init__", "__main__", "card", "contract", "errors", "features", "fields", "model",
         "sampling", "settings", "synthetic"],
    "data": ["__init__", "contract_file", "files", "infer", "ingest", "validate"],
    "modeling": ["__init__", "baseline", "evaluate", "explain", "fit", "model_card", "segments"],
    "registry": ["__init__", "artifact", "cache", "champions", "export", "profile", "promote",
                 "receipt", "store", "tracking"],
    "jobs": ["__init__", "evaluate", "notify", "predict", "reproduce", "train", "tune"],
    "cli": ["__init__", "data", "prediction", "shared", "training", "tuning"],
}  # fmt: skip
TESTS = {
    "": ["__init__", "conftest", "recorder", "test_cli", "test_contract", "test_end_to_end",
         "test_features", "test_layout", "test_sampling", "test_settings"],
    "data": ["__init__", "test_infer", "test_ingest", "test_validate"],
    "modeling": ["__init__", "test_baseline", "test_evaluate"],
    "registry": ["__init__", "test_export", "test_promote"],
    "jobs": ["__init__", "test_notify", "test_predict", "test_train", "test_tune"],
}  # fmt: skip
# Only with `serving`.
SERVING_MODULES = {
    "service": ["__init__", "app", "deps", "exception_handlers", "explanations", "fast_path",
                "guard", "holder", "logs", "metrics", "openapi", "prediction_log",
                "prediction_records", "rollout", "schemas", "scoring", "smoke"],
    "service/routes": ["__init__", "admin", "metrics", "model_info", "predict", "probes"],
    "cli": ["serving"],
}  # fmt: skip
SERVING_TESTS = {
    "service": ["__init__", "conftest", "test_app", "test_deps", "test_exception_handlers",
                "test_fast_path", "test_fuzz", "test_guard", "test_holder", "test_logs",
                "test_metrics", "test_openapi", "test_prediction_log", "test_prediction_records",
                "test_rollout", "test_schemas", "test_scoring", "test_smoke"],
    "service/routes": ["__init__", "test_model_info", "test_predict", "test_probes"],
    "load": ["__init__", "loadtest", "test_overload", "test_shutdown"],
}  # fmt: skip
# Only with `monitoring`.
MONITORING_MODULES = {
    "monitoring": [
        "__init__", "dispatch", "distributions", "drift", "live_metrics", "report", "retrain",
        "simulate", "variants", "window",
    ],
    "cli": ["monitoring"],
}  # fmt: skip
MONITORING_TESTS = {
    "monitoring": [
        "__init__", "conftest", "test_distributions", "test_drift", "test_live_metrics",
        "test_retrain", "test_simulate",
    ]
}  # fmt: skip
TOP = [
    ".copier-answers.yml", ".env.example", ".gitignore", ".pre-commit-config.yaml",
    ".python-version", "Makefile", "README.md", "pyproject.toml", "ruff.toml",
    "mkdocs.yml", "docs/index.md", "docs/model-card.md", "docs/api.md",
]  # fmt: skip
# Not Jinja: `${{ ... }}` (a GitHub Actions expression), `{{ $labels.x }}` (a Prometheus template).
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{(?! \$)|\{%|\{#|\.jinja\b")

pytestmark = pytest.mark.parametrize("name", sorted(ANSWER_SETS))


def python_files(root: str, folders: dict[str, list[str]]) -> set[str]:
    return {
        "/".join(filter(None, [root, folder, f"{name}.py"]))
        for folder, names in folders.items()
        for name in names
    }


def expected_files(answers: dict) -> set[str]:
    package = answers["package_name"]
    files = set(TOP)
    files |= python_files(f"src/{package}", MODULES) | python_files("tests", TESTS)
    if answers["serving"]:
        files.add("logs/.gitignore")
        files |= python_files(f"src/{package}", SERVING_MODULES)
        files |= python_files("tests", SERVING_TESTS)
    if answers["dashboard"]:
        files |= {f"src/{package}/service/dashboard.py", f"src/{package}/service/dashboard.html"}
        files.add(f"src/{package}/service/timeline.py")
        files.add(f"src/{package}/service/routes/dashboard.py")
        files.add("tests/service/test_dashboard.py")
    if answers["monitoring"]:
        files |= python_files(f"src/{package}", MONITORING_MODULES)
        files |= python_files("tests", MONITORING_TESTS)
    if answers["spark"]:
        spark = ["__init__", "checks", "predict", "scoring", "session"]
        files |= {f"src/{package}/jobs/spark/{module}.py" for module in spark}
        files.add("tests/jobs/test_spark.py")
        files.add("spark_job.py")
    files.add(
        "data/customers.csv" if answers["problem_type"] == "classification" else "data/products.csv"
    )
    if answers["license"] != "Proprietary":
        files.add("LICENSE")
    if answers["monitoring"]:
        files |= {
            "monitoring/alertmanager.yml", "monitoring/alerts.yml", "monitoring/alerts.test.yml",
            "monitoring/prometheus.yml", "monitoring/grafana/dashboards/service.json",
            "monitoring/grafana/provisioning/dashboards/dashboards.yml",
            "monitoring/grafana/provisioning/datasources/prometheus.yml",
        }  # fmt: skip
    if answers["docker"]:
        files |= {".dockerignore", "Dockerfile", "compose.yaml", "deploy/mlflow/Dockerfile"}
        if answers["kubernetes"]:  # asked, and recorded, only with docker
            base = ["configmap", "deployment", "hpa", "kustomization", "networkpolicy", "pdb",
                    "service"]  # fmt: skip
            files |= {f"deploy/k8s/base/{name}.yaml" for name in base}
            files.add("deploy/rollout.sh")
            overlays = {
                "staging": ["hpa-patch", "kustomization", "settings-patch"],
                "production": ["deployment-patch", "hpa-patch", "kustomization"],
            }
            for overlay, names in overlays.items():
                files |= {f"deploy/k8s/overlays/{overlay}/{name}.yaml" for name in names}
            files |= {f"deploy/k8s/tune/{name}.yaml" for name in ("job", "kustomization",
                                                                  "networkpolicy")}  # fmt: skip
            files.add("deploy/trainer/Dockerfile")
    if answers["docker"] or answers["ci_provider"] != "none":  # something for `make scan`
        files.add(".checkov.yaml")
    if answers["ci_provider"] == "github":
        workflows = ["ci", "train"] + (["release"] if answers["docker"] else [])
        files |= {f".github/workflows/{name}.yml" for name in workflows}
        files.add(".github/dependabot.yml")
    elif answers["ci_provider"] == "gitlab":
        files.add(".gitlab-ci.yml")
    return files


# A file the docs of a rendering name in a code span: from the project's root, or a module
# from the package's folder (the module map).
NAMED_PATH = re.compile(r"`((?:src|tests|deploy|docs)/[^`\s<*{$]+|[a-z_]+/[a-z_/]+\.py)`")


def test_the_docs_name_only_files_the_project_has(name, rendered, answers_of):
    project = rendered(name)
    package = project / "src" / answers_of(name)["package_name"]
    missing = []
    for doc in [project / "README.md", *sorted((project / "docs").rglob("*.md"))]:
        for named in NAMED_PATH.findall(doc.read_text()):
            path = named.split("::")[0]
            from_root = path.split("/")[0] in {"src", "tests", "deploy", "docs"}
            if not ((project if from_root else package) / path).exists():
                missing.append(f"{doc.relative_to(project)}: {named}")
    assert not missing, missing


def test_file_set_follows_the_answers(name, rendered, answers_of):
    project = rendered(name)
    actual = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    assert actual == expected_files(answers_of(name))


def test_answers_are_recorded(name, rendered, answers_of):
    recorded = answers_of(name)
    for key, value in ANSWER_SETS[name].items():
        assert recorded[key] == value
    assert "_src_path" in recorded and "reserved_stdlib_modules" not in recorded


def test_no_jinja_is_left_over(name, rendered):
    project = rendered(name)
    for path in project.rglob("*"):
        assert not LEFTOVER_JINJA.search(str(path.relative_to(project)))
        if path.is_file() and path.suffix != ".csv":
            text = path.read_text()
            match = LEFTOVER_JINJA.search(text)
            assert not match, (
                f"{path.relative_to(project)}: {text[match.start() - 40 : match.end() + 40]!r}"
            )


def test_structured_files_parse(name, rendered):
    project = rendered(name)
    parsed = 0
    for path in project.rglob("*"):
        if path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(path.read_text())
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            json.loads(path.read_text())
        else:
            continue
        parsed += 1
    assert parsed >= 4


def test_ruff_check_and_format_are_clean(name, rendered):
    project = rendered(name)
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([tool("ruff"), *args], cwd=project, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_project_metadata_follows_the_answers(name, rendered, answers_of):
    project, answers = rendered(name), answers_of(name)
    package = answers["package_name"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert pyproject["name"] == package.replace("_", "-")
    assert pyproject["description"] == answers["description"]
    assert pyproject["authors"] == [
        {"name": answers["author_name"], "email": answers["author_email"]}
    ]
    assert pyproject["requires-python"] == f">={answers['python_version']}"
    assert pyproject["scripts"] == {package: f"{package}.cli:main"}
    assert (project / ".python-version").read_text().strip() == answers["python_version"]
    ruff = tomllib.loads((project / "ruff.toml").read_text())
    assert ruff["target-version"] == "py" + answers["python_version"].replace(".", "")
    if answers["license"] == "Proprietary":
        assert "license" not in pyproject
    else:
        assert pyproject["license"] == answers["license"]
        text = (project / "LICENSE").read_text()
        heading = {
            "MIT": "MIT License",
            "BSD-3-Clause": "BSD 3-Clause License",
            "Apache-2.0": "Apache License",
        }
        assert heading[answers["license"]] in text
        if answers["license"] != "Apache-2.0":  # Apache's text carries no copyright line
            assert f"{answers['copyright_year']}" in text and answers["author_name"] in text


# Import names that are not their distribution's name (normalised: lower case, "-" for "_").
DISTRIBUTION_OF = {"sklearn": "scikit-learn", "yaml": "pyyaml"}


def test_every_package_the_code_imports_is_declared(name, rendered):
    """A package imported only through another's dependencies breaks when that one drops it:
    each one the rendered package imports is in its dependencies or a dependency group."""
    project = rendered(name)
    metadata = tomllib.loads((project / "pyproject.toml").read_text())
    requirements = metadata["project"]["dependencies"] + [
        requirement
        for group in metadata["dependency-groups"].values()
        for requirement in group
        if isinstance(requirement, str)
    ]
    declared = {
        re.match(r"[A-Za-z0-9_.-]+", r).group().lower().replace("_", "-") for r in requirements
    }
    declared |= {"mlflow"} if "mlflow-skinny" in declared else set()
    imported = set()
    for module in (project / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    wanted = {DISTRIBUTION_OF.get(m, m.lower().replace("_", "-")) for m in third_party}
    assert not wanted - declared, f"imported but not declared: {sorted(wanted - declared)}"


def test_tuning_starts_from_every_default(name, rendered):
    """`tune` enqueues PARAMS as its first trial: each name the search space suggests must
    have its default there, or that trial would not be the defaults."""
    source = next((rendered(name) / "src").glob("*/model.py"))
    tree = ast.parse(source.read_text())
    (params,) = [
        node.value for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "PARAMS"
    ]  # fmt: skip
    defaults = {key.value for key in params.keys}
    suggested = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "").startswith("suggest_")
    }
    assert suggested and suggested <= defaults, sorted(suggested - defaults)


def test_model_and_example_follow_the_problem(name, rendered, answers_of):
    project, answers = rendered(name), answers_of(name)
    source = project / "src" / answers["package_name"]
    classification = answers["problem_type"] == "classification"
    kind = "Classifier" if classification else "Regressor"
    estimator = {
        "hist_gradient_boosting": f"HistGradientBoosting{kind}",
        "random_forest": f"RandomForest{kind}",
        "linear": "LogisticRegression" if classification else "Ridge",
        "lightgbm": f"LGBM{kind}",
        "xgboost": "LabelledXGBClassifier" if classification else "XGBRegressor",
    }[answers["model_family"]]
    model = (source / "model.py").read_text()
    assert f"return {estimator}(" in model
    # Trees take numbers as they are; a linear model standardised.
    assert f"SCALE_NUMBERS = {answers['model_family'] == 'linear'}" in model
    # The family's library is in the exact group: what loads the pipeline.
    groups = tomllib.loads((project / "pyproject.toml").read_text())["dependency-groups"]
    libraries = {"lightgbm": {"lightgbm"}, "xgboost": {"xgboost-cpu", "xgboost"}}  # cpu: Linux
    exact = {re.split("[<>=;]", spec)[0] for spec in groups["exact"]}
    extra = libraries.get(answers["model_family"], set())
    assert exact - {"pandas", "scikit-learn", "skops"} == extra
    contract = (source / "contract.py").read_text()
    assert ('"classification"' in contract) is classification
    assert ("customer_id" in contract) is classification
    assert f"{answers['package_name'].upper()}_" in (source / "settings.py").read_text()
    readme = (project / "README.md").read_text()
    assert f"uv run {answers['package_name']} train" in readme and answers["project_name"] in readme
