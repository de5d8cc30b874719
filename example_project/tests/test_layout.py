"""The package's folders follow the flow of the data, and imports run with it: an earlier stage
never imports a later one, and no two modules import each other, however indirectly (imports
inside functions and under TYPE_CHECKING count too).

A module of your own that is not in a stage of FLOW counts as the last stage: it may import
anything, and the template's modules never import it."""

import ast
from pathlib import Path

import customer_churn

PACKAGE = Path(customer_churn.__file__).parent
# The stages in the order data flows through them; a module may import its own stage or an
# earlier one. The top-level modules hold what every stage shares (settings, errors, the
# contract and its vocabulary, rows sampled from it) and the files a user edits (contract, model,
# synthetic data, the model card's prose).
FLOW = [
    "(top level)",
    "data",
    "features",
    "modeling",
    "registry",
    "jobs",
    "service",
    "monitoring",
    "cli",
]
SHARED = {
    "__init__",
    "settings",
    "errors",
    "fields",
    "contract",
    "model",
    "synthetic",
    "sampling",
    "card",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def stage_of(module: str) -> int:
    head = module.split(".")[0]
    if head in SHARED:
        return 0
    if head == "__main__":
        return FLOW.index("cli")
    return FLOW.index(head) if head in FLOW else len(FLOW)


def stage_name(module: str) -> str:
    stage = stage_of(module)
    return FLOW[stage] if stage < len(FLOW) else "your own"


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _target(node: ast.ImportFrom, package: list[str]) -> list[str] | None:
    """The package path an `from ... import` reads from, or None outside the package."""
    if node.level:
        base = package[: len(package) - (node.level - 1)]
        return base + (node.module.split(".") if node.module else [])
    parts = (node.module or "").split(".")
    return parts[1:] if parts[0] == PACKAGE.name else None


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's own modules that `path` imports, anywhere in the file."""
    package = [] if name == "__init__" else name.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (target := _target(node, package)) is not None:
            for alias in node.names:
                candidate = ".".join([*target, alias.name])
                found.add(candidate if candidate in known else ".".join(target) or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                head, _, rest = alias.name.partition(".")
                if head == PACKAGE.name:
                    found.add(rest or "__init__")
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_no_import_runs_against_the_flow():
    backwards = [
        f"{name} ({stage_name(name)}) imports {target} ({stage_name(target)})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if stage_of(target) > stage_of(name)
    ]
    assert backwards == []


def test_no_import_cycle():
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == [], " ; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_checks_see_imports_of_every_kind(tmp_path):
    """The walk finds relative, absolute, nested and type-only imports (a check that saw
    none would pass whatever the code does), and every stage of FLOW is a folder or module."""
    modules_of_their_own = ("(top level)", "features", "cli")
    assert all((PACKAGE / stage).is_dir() or stage in modules_of_their_own for stage in FLOW)
    edges = graph()
    assert "contract" in edges["features"]
    assert any(targets for name, targets in edges.items() if name.startswith("jobs."))
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .cli import app\n"
        "def f():\n    from customer_churn.data import ingest\n"
    )
    assert imports_of("features", source, set(modules())) == {"cli", "data.ingest"}
