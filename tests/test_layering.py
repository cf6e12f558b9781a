"""hintgrpo's packages and top-level modules import one another without a cycle, so each sits in a layer above
everything it imports. Imports inside functions count too: deferring an import hides a cycle, it does not remove it."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hintgrpo"


def imported_units(path: Path) -> set[str]:
    """The units of hintgrpo (`data` for hintgrpo.data.loaders, `cli` for hintgrpo.cli) that `path` imports."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "hintgrpo":  # from hintgrpo import teachers
            modules.update(f"hintgrpo.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: use an absolute import"
            modules.add(node.module)
    return {module.split(".")[1] for module in modules if module.startswith("hintgrpo.")}


def import_graph() -> dict[str, set[str]]:
    """Each unit of hintgrpo -> the other units it imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        unit = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if unit != "__init__":
            graph.setdefault(unit, set()).update(imported_units(path) - {unit})
    return graph


def layers(graph: dict[str, set[str]]) -> list[str]:
    """The units bottom to top (each after everything it imports); a cycle is an error naming it."""
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle between hintgrpo's units: {' -> '.join(error.args[1])}") from None


def test_packages_import_each_other_without_a_cycle():
    order = layers(import_graph())
    for lower, upper in [("tasks", "data"), ("data", "models"), ("models", "teachers"), ("teachers", "preprocess")]:
        assert order.index(lower) < order.index(upper)


def test_a_new_cycle_is_caught():
    graph = import_graph()
    graph["data"].add("teachers")  # e.g. a loader that imports the lexicon teacher
    with pytest.raises(AssertionError, match="import cycle between hintgrpo's units: .*data"):
        layers(graph)
