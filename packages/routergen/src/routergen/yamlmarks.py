"""Line-aware YAML loading: safe constructors plus a map from key paths to source lines.

``yaml.safe_load`` forgets where things were; recipes need errors like
``recipe.yaml:12: grammar.rules.greeting[2]: ...``.  We compose the node tree once, build
the Python value with PyYAML's safe constructor and record each node's line (1-based)
under its path (a tuple of keys and list indices).  Duplicate mapping keys, which PyYAML
silently collapses to the last one, are reported as errors.  Aliases are expanded by the walk,
so a "billion laughs" document (a few anchors of ten aliases each, nested) would take forever:
the walk stops after :data:`MAX_NODES` nodes and refuses the document, naming the alias's line.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import RecipeError

Path_ = tuple[Any, ...]

#: Most YAML nodes (aliases expanded) a recipe may have; real recipes have a few thousand.
MAX_NODES = 100_000


def path_str(path: Path_) -> str:
    """Render a key path as ``a.b[2].c``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


class Marked:
    """A loaded YAML document and the line of every key path in it."""

    def __init__(self, data: Any, lines: dict[Path_, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def line(self, path: Path_) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path: Path_, reason: str) -> RecipeError:
        """A :class:`RecipeError` at ``path``'s line."""
        return RecipeError(self.source, self.line(path), path_str(path), reason)


class _Budget:
    __slots__ = ("left",)

    def __init__(self, n: int) -> None:
        self.left = n


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str, budget: _Budget) -> None:
    budget.left -= 1
    if budget.left < 0:
        raise RecipeError(
            source,
            node.start_mark.line + 1,
            path_str(path),
            f"YAML aliases expand to more than {MAX_NODES:,} nodes (an alias bomb?); write the values out",
        )
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                raise RecipeError(
                    source,
                    key_node.start_mark.line + 1,
                    path_str(path + (key,)),
                    f"duplicate key (first defined on line {seen[key]})",
                )
            seen[key] = key_node.start_mark.line + 1
            # The key's own line is the useful one for "bad value for key" errors.
            _walk(value_node, path + (key,), lines, source, budget)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines, source, budget)


def load_marked(text: str, source: str = "<recipe>") -> Marked:
    """Parse one YAML document safely; return it with its line map.

    Raises :class:`RecipeError` naming the line for syntax errors and duplicate keys.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise RecipeError(source, 1, "", "the recipe is empty")
        lines: dict[Path_, int] = {}
        _walk(node, (), lines, source, _Budget(MAX_NODES))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise RecipeError(source, line, "", f"invalid YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise RecipeError(source, None, "", f"invalid YAML: {e}") from None
    finally:
        loader.dispose()
    return Marked(data, lines, source)
