"""Tier 1: the rendered package is made of short pieces a student can read in one sitting.

For every answer set: no module of the package over MODULE_LINES lines (the dashboard's HTML
page aside: it is not Python) and no function over FUNCTION_LINES. The rendered project's own
tests/test_layout.py checks the direction of its imports; this checks the sizes, which a user
is free to change in their project and the template is not.
"""

import ast
import hashlib
import re
from pathlib import Path

import pytest

from answer_sets import ANSWER_SETS
from harness import ROOT

MODULE_LINES = 250
FUNCTION_LINES = 60


def package_of(project: Path) -> Path:
    (package,) = (project / "src").iterdir()
    return package


def oversized(package: Path) -> tuple[list[str], list[str]]:
    """Modules over MODULE_LINES and functions over FUNCTION_LINES, as readable lines."""
    modules, functions = [], []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package.parent)
        source = path.read_text()
        if (lines := len(source.splitlines())) > MODULE_LINES:
            modules.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    functions.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    return modules, functions


@pytest.mark.parametrize("name", sorted(ANSWER_SETS))
def test_no_module_or_function_is_too_long(rendered, name):
    modules, functions = oversized(package_of(rendered(name)))
    assert modules == [], f"modules over {MODULE_LINES} lines"
    assert functions == [], f"functions over {FUNCTION_LINES} lines"


def test_the_size_check_sees_long_pieces(tmp_path):
    """A check that measured nothing would pass whatever the template renders."""
    package = tmp_path / "src" / "probe"
    package.mkdir(parents=True)
    body = "".join(f"    x{i} = {i}\n" for i in range(FUNCTION_LINES))
    (package / "long.py").write_text(f"def long():\n{body}\n" + "\n" * MODULE_LINES)
    modules, functions = oversized(package_of(tmp_path))
    assert modules == [f"probe/long.py: {MODULE_LINES + FUNCTION_LINES + 2} lines"]
    assert functions == [f"probe/long.py:1 long: {FUNCTION_LINES + 1} lines"]


def flow_of(project: Path) -> tuple[list[str], set[str]]:
    """FLOW and SHARED of the rendering's own layout test: the stages in the order data flows."""
    tree = ast.parse((project / "tests" / "test_layout.py").read_text())
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        if node.targets[0].id in ("FLOW", "SHARED")
    }
    return values["FLOW"], values["SHARED"]


@pytest.mark.parametrize("name", sorted(ANSWER_SETS))
def test_the_readme_maps_every_module_in_the_order_data_flows(rendered, name):
    """The rendered README's table of modules names each module of the package (its path in
    the package, in backticks, opening a row), stage after stage as FLOW orders them."""
    project = rendered(name)
    package = package_of(project)
    flow, shared = flow_of(project)
    modules = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    }
    rows = re.findall(r"^\| `([\w/]+\.py)` \|", (project / "README.md").read_text(), re.MULTILINE)
    assert sorted(modules - set(rows)) == [], "modules the README's map leaves out"
    assert sorted(set(rows) - modules) == [], "rows naming no module of the package"

    def stage(row: str) -> int:
        head = row.removesuffix(".py").split("/")[0]
        return 0 if head in shared else flow.index(head)

    stages = [stage(row) for row in rows]
    assert stages == sorted(stages), f"rows out of the flow's order: {rows}"


def test_contract_init_recognizes_the_shipped_example_contracts():
    """`contract init` replaces an untouched example contract without --force: it knows each
    one by the sha256 listed in data/contract_file.py, which must follow edits of the examples
    (they are not Jinja templates, so the rendered text is the file's)."""
    package = ROOT / "template" / "src" / "{{ package_name }}"
    source = (package / "data" / "contract_file.py").read_text()
    (listed,) = [
        ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXAMPLES"
    ]
    examples = sorted(package.glob("*contract.py{% endif %}"))
    assert len(examples) == 2
    digests = {hashlib.sha256(path.read_bytes()).hexdigest() for path in examples}
    assert digests <= listed, "update EXAMPLES in data/contract_file.py to the examples' sha256"
