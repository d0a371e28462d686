"""Check the layering of every package: no import cycles, generators use only datacore's public API.

Usage: ``python tools/check_imports.py`` (exit 1 and one line per problem when something is wrong).

* A cycle is any strongly connected set of two or more modules of one package, counting
  every import (module level or inside a function: a lazy import is still a dependency).
* A generator may import only ``datacore``, ``datacore.llm``, ``datacore.testing`` and
  ``datacore.llm.testing``, and from them only names in their ``__all__``.
* No generator imports another generator.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# package name -> source root holding the top-level import package
PACKAGES = {
    "datacore": ROOT / "packages/datacore/src/datacore",
    "fsmdata": ROOT / "packages/fsmdata/src/fsmdata",
    "lambdagen": ROOT / "packages/lambdagen/python/lambdagen",
    "ds2ds_gen": ROOT / "packages/ds2ds-gen/src/ds2ds_gen",
    "routergen": ROOT / "packages/routergen/src/routergen",
    "gatling_sid": ROOT / "packages/gatling-sid/src/gatling_sid",
}
PUBLIC_DATACORE = ("datacore", "datacore.llm", "datacore.testing", "datacore.llm.testing")


def module_name(root: Path, path: Path) -> str:
    """Dotted module name of ``path`` inside the package rooted at ``root``."""
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(mod: str, path: Path, is_pkg: bool) -> Iterable[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) for every import statement in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = base[: len(base) - (node.level - 1)]
                target = ".".join(up + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno


def public_names(init: Path) -> set[str]:
    """The names in a module's ``__all__`` (read with ast, nothing is imported)."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {ast.literal_eval(e) for e in node.value.elts}  # type: ignore[attr-defined]
    return set()


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more nodes (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check_package(name: str, root: Path, datacore_public: dict[str, set[str]]) -> list[str]:
    """Every layering problem of one package, one line each."""
    problems = []
    files = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for target, names, line in imports_of(mod, path, path.name == "__init__.py"):
            top = target.split(".")[0]
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
            if top == name:
                # "from . import x" may name a submodule: depend on it when it is one
                for cand in [f"{target}.{n}" for n in names] + [target]:
                    if cand in files and cand != mod:
                        graph[mod].add(cand)
                        if cand != target:
                            break
            elif top in PACKAGES and top != "datacore":
                problems.append(f"{where}: {name} imports another generator ({target})")
            elif top == "datacore" and name != "datacore":
                if target not in datacore_public:
                    problems.append(f"{where}: imports private module {target} (public: {', '.join(PUBLIC_DATACORE)})")
                else:
                    hidden = [
                        n
                        for n in names
                        if n != "*" and n not in datacore_public[target] and f"{target}.{n}" not in datacore_public
                    ]
                    if hidden:
                        problems.append(f"{where}: imports {', '.join(hidden)} from {target}, not in its __all__")
    # A package's __init__ importing its own submodules is not a layering cycle.
    for comp in cycles({m: {t for t in ts if t != name} for m, ts in graph.items() if m != name}):
        problems.append(f"{name}: import cycle: {' -> '.join(comp)}")
    return problems


def datacore_public_api() -> dict[str, set[str]]:
    """Public modules of datacore and their ``__all__``."""
    root = PACKAGES["datacore"]
    out = {}
    for mod in PUBLIC_DATACORE:
        rel = Path(*mod.split(".")[1:])
        path = root / rel / "__init__.py" if (root / rel).is_dir() else root / rel.with_suffix(".py")
        if mod == "datacore":
            path = root / "__init__.py"
        if path.exists():
            out[mod] = public_names(path)
    return out


def main() -> int:
    api = datacore_public_api()
    problems = [p for name, root in PACKAGES.items() for p in check_package(name, root, api)]
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s)")
        return 1
    print(f"layering ok: {len(PACKAGES)} packages, no import cycles, generators use datacore's public API only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
