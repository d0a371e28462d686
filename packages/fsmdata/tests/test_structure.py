"""Package structure: no import cycles between fsmdata modules (function-level imports
included) and no module-level cache of heavy state."""

from __future__ import annotations

import ast
from pathlib import Path

import fsmdata

SRC = Path(fsmdata.__file__).parent


def _graph() -> dict[str, set[str]]:
    mods = {p.stem: p for p in SRC.glob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    graph[m].add(node.module.split(".")[0])
                else:  # from . import x
                    graph[m].add("__init__")
    return graph


def test_no_import_cycles() -> None:
    graph = _graph()
    graph.pop("__init__")  # the package face imports everything; nothing may import it back
    for deps in graph.values():
        assert "__init__" not in deps
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            assert state.get(d) != 1, "import cycle: " + " -> ".join([*path, m, d])
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_no_module_level_caches() -> None:
    for p in SRC.glob("*.py"):
        for node in ast.parse(p.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            for t in targets:
                if isinstance(t, ast.Name) and "cache" in t.id.lower():
                    raise AssertionError(f"{p.name}: module-level {t.id}")
            value = getattr(node, "value", None)
            if isinstance(value, (ast.Dict, ast.Call)) and isinstance(value, ast.Dict) and targets:
                name = getattr(targets[0], "id", "")
                assert name.isupper() or name.startswith("__"), f"{p.name}: mutable module-level dict {name}"
